"""The PyTorch runtime (INGEST_EMBEDDING_RUNTIME=torch, the `ingest[torch]` extra):
sentence-transformers on the CPU. The default runtime is ONNX (onnx_embedder.py);
this one stays for models the ONNX builder does not know. Nothing here imports
PyTorch until the model loads."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingest.embedding.base import Vectors
from ingest.embedding.model_cache import DigestCache
from ingest.embedding.model_files import DEFAULT_MODEL, ModelFolder
from ingest.errors import ConfigError

log = logging.getLogger(__name__)


class LocalEmbedder:
    """sentence-transformers on CPU; the model loads on first use (imports cost seconds)."""

    def __init__(
        self, model: ModelFolder, *, cache_dir: Path, batch_size: int = 8, threads: int = 1
    ) -> None:
        self.model = model
        self.model_dir = model.path
        self._digests = DigestCache(cache_dir)
        self._threads = threads
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()
        # The ids this runtime always had: vectors made by it stay valid.
        self._model_id = (
            f"sentence-transformers/{DEFAULT_MODEL}@{model.pinned_sha256[:8]}"
            if model.pinned_sha256
            else f"local:{self.model_dir}"
        )
        if model.query_prefix or model.document_prefix:
            self._model_id += f"/{model.recipe}"

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
        return self.model.max_seq_length - 2

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
        pinned = self.model.pinned_sha256
        if pinned and self._digests.sha256(self.model.weights) != pinned:
            raise ConfigError(
                f"{self.model.weights} does not match the pinned SHA-256 of "
                f"{DEFAULT_MODEL}; reinstall it or point INGEST_EMBEDDING_MODEL at a "
                "trusted folder"
            )
        # Never reach for the network; keep library chatter off our output.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ConfigError(
                "INGEST_EMBEDDING_RUNTIME=torch needs PyTorch and sentence-transformers: "
                "pip install 'ingest[torch]'"
            ) from None
        from transformers.utils import logging as hf_logging

        # PyTorch defaults to one thread per core. Beside any other busy process (a
        # second worker, the API, a parser) its threads spin-wait on each other and a
        # batch takes 20-30x longer (measured); one thread per process degrades gently.
        torch.set_num_threads(self._threads)

        hf_logging.disable_progress_bar()
        return SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)

    def warm_up(self) -> None:
        """Load (and check) the model now, and run it once: PyTorch's first forward
        pass is slow too."""
        self.embed(["warm-up"])

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Documents (chunks), with the model's document prefix."""
        return self._encode([self.model.document_prefix + t for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Search queries, with the model's query prefix."""
        return self._encode([self.model.query_prefix + t for t in texts])

    def _encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, int(self.model.config.get("hidden_size", 384))), np.float32)
        vectors = self._load().encode(
            texts,
            prompt="",  # the prefixes are ours (above), not the folder's default prompt
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
