"""What an embedder is: text -> unit-length float32 vectors, and the blob layout
vectors are stored in. The implementations are adapters beside this module."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]


class Embedder(Protocol):
    @property
    def model_id(self) -> str:
        """Identifies the vectors: part of the embedding-cache key and the fingerprint."""

    @property
    def tokenizer_path(self) -> Path:
        """The tokenizer.json that sizes chunks for this model."""

    @property
    def max_tokens(self) -> int:
        """The most tokens one chunk may hold for this model."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Documents' chunks: one row per text, L2-normalised."""

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Search queries: as embed(), with the model's query prefix where it has one
        (e5 and bge models embed questions and passages differently)."""

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
