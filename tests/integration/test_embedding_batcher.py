"""The shared embedding batcher: job threads ask for their own texts and get their own
rows, while the model runs batches mixed across them, never more at once than its
runners."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ingest.embedding import Vectors
from ingest.embedding.batcher import SharedBatcher
from ingest.embedding.onnx_embedder import OnnxEmbedder
from ingest.errors import EmbeddingError


class Recording:
    """The real embedder, recording each batch it is handed and how many run at once."""

    def __init__(self, inner: OnnxEmbedder) -> None:
        self.inner = inner
        self.batches: list[list[str]] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()
        self.fail_on: str | None = None

    model_id = property(lambda self: self.inner.model_id)
    tokenizer_path = property(lambda self: self.inner.tokenizer_path)
    max_tokens = property(lambda self: self.inner.max_tokens)

    def warm_up(self) -> None:
        self.inner.warm_up()

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self.inner.embed_queries(texts)

    def embed(self, texts: Sequence[str]) -> Vectors:
        with self._lock:
            self.batches.append(list(texts))
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.fail_on is not None and self.fail_on in texts:
                raise EmbeddingError("the model failed on this batch")
            return self.inner.embed(texts)
        finally:
            with self._lock:
                self.running -= 1


def documents(n: int) -> list[list[str]]:
    """n documents' chunks, of varied lengths."""
    return [
        [f"document {d} chunk {c}: " + "durable ingestion keeps documents " * (1 + (c * 7 + d) % 9)
         for c in range(12)]
        for d in range(n)
    ]  # fmt: skip


def embed_concurrently(batcher: SharedBatcher, docs: list[list[str]]) -> list[Vectors]:
    results: list[Vectors | None] = [None] * len(docs)
    start = threading.Barrier(len(docs))

    def job(i: int) -> None:
        start.wait()
        for offset in range(0, len(docs[i]), 4):  # as the ingestor does: batch by batch
            rows = batcher.embed(docs[i][offset : offset + 4])
            previous = results[i]
            results[i] = rows if previous is None else np.vstack([previous, rows])

    threads = [threading.Thread(target=job, args=(i,)) for i in range(len(docs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def test_each_job_gets_its_own_vectors_while_batches_mix_documents(
    real_embedder: OnnxEmbedder,
) -> None:
    recording = Recording(real_embedder)
    batcher = SharedBatcher(recording, batch_size=8, runners=2)
    docs = documents(4)
    try:
        results = embed_concurrently(batcher, docs)
    finally:
        batcher.close()
    for doc, rows in zip(docs, results, strict=True):
        np.testing.assert_allclose(rows, real_embedder.embed(doc), atol=1e-5)
    assert recording.most_at_once <= 2, "never more batches at once than runners"
    assert all(len(batch) <= 8 for batch in recording.batches)
    mixed = [b for b in recording.batches if len({t.split(" chunk")[0] for t in b}) > 1]
    assert mixed, "texts of documents in flight share batches"


def test_a_failed_batch_fails_the_callers_whose_texts_it_held(
    real_embedder: OnnxEmbedder,
) -> None:
    recording = Recording(real_embedder)
    recording.fail_on = "poison"
    batcher = SharedBatcher(recording, batch_size=8, runners=1)
    try:
        with pytest.raises(EmbeddingError, match="failed on this batch"):
            batcher.embed(["poison"])
        assert batcher.embed(["healthy text"]).shape == (1, 384), "the executor lives on"
    finally:
        batcher.close()


def test_the_context_shares_one_batcher_for_the_local_model(tmp_path: Path) -> None:
    from ingest.context import Context
    from ingest.settings import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ingest.db'}", embedding_threads=1)
    ctx = Context(settings)
    try:
        assert isinstance(ctx.embedder, SharedBatcher)
        assert ctx.pipeline.embedder is ctx.embedder is ctx.searcher.embedder
    finally:
        ctx.close()
