"""The default offline embedder: a BERT-family model run by ONNX Runtime, tokenised
by `tokenizers`, pooled and normalised in NumPy. No PyTorch.

The graph is built from the folder's safetensors on first use and cached on disk
(onnx_graph.py); the weights are checked against the pinned SHA-256 (the default
model) before anything is built or loaded from them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ingest.embedding.base import Vectors, normalize
from ingest.embedding.model_cache import DigestCache
from ingest.embedding.model_files import ModelFolder
from ingest.embedding.onnx_graph import Precision, cached_graph
from ingest.errors import ConfigError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)


class OnnxEmbedder:
    """Thread-safe: ONNX Runtime sessions and a configured tokenizer may be called
    from several threads at once. The model loads on first use (or warm_up())."""

    def __init__(
        self,
        model: ModelFolder,
        *,
        cache_dir: Path,
        precision: Precision = "int8",
        threads: int = 1,
    ) -> None:
        self.model = model
        self.precision: Precision = precision
        self._cache_dir = cache_dir
        self._digests = DigestCache(cache_dir)
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Tokenizer | None = None
        self._input_names: list[str] = []
        self._model_id: str | None = None
        self._dimensions = int(model.config.get("hidden_size", 0))

    @property
    def model_id(self) -> str:
        """Runtime, precision, model, weights and recipe: change any and the vectors
        (and so the pipeline fingerprint) change with it."""
        if self._model_id is None:
            sha = self.model.pinned_sha256 or self._digests.sha256(self.model.weights)
            self._model_id = (
                f"onnx-{self.precision}:{self.model.name}@{sha[:8]}/{self.model.recipe}"
            )
        return self._model_id

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def tokenizer_path(self) -> Path:
        return self.model.tokenizer

    @property
    def max_tokens(self) -> int:
        """Chunk capacity: the model's sequence limit less [CLS], [SEP] and the
        document prefix, read from files so that planning does not load the model."""
        return self.model.max_seq_length - 2 - self._prefix_tokens(self.model.document_prefix)

    def _prefix_tokens(self, prefix: str) -> int:
        if not prefix:
            return 0
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model.tokenizer))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return len(tokenizer.encode(prefix, add_special_tokens=False).ids)

    def warm_up(self) -> None:
        """Verify, build (first time only) and load the model, and run it once."""
        self.embed(["warm-up"])

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Documents (chunks), with the model's document prefix."""
        return self._embed([self.model.document_prefix + t for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Search queries, with the model's query prefix."""
        return self._embed([self.model.query_prefix + t for t in texts])

    def _embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        session, tokenizer = self._load()
        # One text per run. Measured on 2 cores (docs/benchmarks.md), single texts
        # beat batches of 8 even sorted by length (int8: 34 against 47 CPU ms per
        # chunk): no padding to compute. And int8 quantises activations per run, so a
        # text's vector would depend on its neighbours in a batch; alone, it is the
        # same whatever else is being embedded (the cache is keyed by text).
        return np.vstack([self._run(session, tokenizer, [text]) for text in texts])

    def _run(self, session: Any, tokenizer: Tokenizer, texts: list[str]) -> Vectors:
        encodings = tokenizer.encode_batch(texts)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        (hidden,) = session.run(None, {n: feeds[n] for n in self._input_names})
        return normalize(pool(np.asarray(hidden), mask, self.model.pooling))

    def _load(self) -> tuple[Any, Tokenizer]:
        with self._lock:
            if self._session is None or self._tokenizer is None:
                started = time.monotonic()
                log.info("loading the embedding model %s", self.model_id)
                self._tokenizer = self._load_tokenizer()
                self._session = self._load_session()
                self._input_names = [i.name for i in self._session.get_inputs()]
                log.info(
                    "embedding model %s loaded in %.1f s",
                    self.model_id,
                    time.monotonic() - started,
                )
            return self._session, self._tokenizer

    def _load_tokenizer(self) -> Tokenizer:
        # Before the first tokenizers call: its thread pool and our forked parser
        # children do not mix (it warns, then runs single-threaded anyway).
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model.tokenizer))
        # tokenizer.json's own settings are not the model's: MiniLM's truncates at
        # 128 tokens and pads every text to 128; sentence-transformers reads 256.
        tokenizer.enable_truncation(max_length=self.model.max_seq_length)
        pad_id = int(self.model.config.get("pad_token_id") or 0)
        pad_token = tokenizer.id_to_token(pad_id) or "[PAD]"
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)  # to the batch's longest
        return tokenizer

    def _load_session(self) -> Any:
        self._verify_weights()
        graph = cached_graph(
            self.model.weights,
            self._weights_sha256(),
            self.model.config,
            self.precision,
            self._cache_dir,
        )
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # The arena keeps the largest batch's buffers for ever (960 MB peak RSS
        # against 593 MB without it, measured); spinning threads burn a busy CPU.
        options.enable_cpu_mem_arena = False
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def _weights_sha256(self) -> str:
        return self.model.pinned_sha256 or self._digests.sha256(self.model.weights)

    def _verify_weights(self) -> None:
        pinned = self.model.pinned_sha256
        if pinned is None:
            return  # a folder the user chose: its hash keys the cache, nothing to match
        if self._digests.sha256(self.model.weights) != pinned:
            raise ConfigError(
                f"{self.model.weights} does not match the pinned SHA-256 of "
                f"{self.model.name}; reinstall it or point INGEST_EMBEDDING_MODEL at a "
                "trusted folder"
            )


def pool(hidden: NDArray[np.float32], mask: NDArray[np.int64], how: str) -> NDArray[np.float32]:
    """One vector per text from its token vectors: the [CLS] token's, or the mean of
    the real (unpadded) tokens', as sentence-transformers' Pooling does."""
    if how == "cls":
        return hidden[:, 0, :]
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    pooled: NDArray[np.float32] = (summed / counts).astype(np.float32)
    return pooled
