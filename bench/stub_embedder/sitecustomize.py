"""Bench only (bench/overhead_bench.py): the model's forward pass replaced by a cheap
deterministic unit vector per text, so that `ingest add`'s CPU is everything but the
model: the CLI, the ledger, parsing, chunking, the store, the handoffs. Loaded by
Python at start-up because the bench puts this folder on PYTHONPATH."""

from __future__ import annotations

import hashlib

import numpy as np

import ingest.embedding.onnx_embedder as onnx_embedder


def _stub_embed(self: onnx_embedder.OnnxEmbedder, texts: list[str]) -> np.ndarray:
    out = np.empty((len(texts), self.dimensions or 384), dtype=np.float32)
    for i, text in enumerate(texts):
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        vector = np.random.default_rng(seed).standard_normal(out.shape[1])
        out[i] = vector / np.linalg.norm(vector)
    return out


onnx_embedder.OnnxEmbedder._embed = _stub_embed  # type: ignore[method-assign]
