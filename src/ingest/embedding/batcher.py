"""One embedding executor per process, shared by every job thread of a worker.

Each job still asks for its own texts and gets its own rows back (and commits only
its own document); in between, the texts of all the documents in flight wait in one
pool and leave it as batches of similar length (less padding to compute), run by a
fixed number of runner threads sized to the CPUs: however many jobs run at once, the
model never runs more batches at a time than the cores can take.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ingest.embedding.base import Vectors


class DocumentEmbedder(Protocol):
    @property
    def model_id(self) -> str: ...
    @property
    def tokenizer_path(self) -> Path: ...
    @property
    def max_tokens(self) -> int: ...
    def embed(self, texts: Sequence[str]) -> Vectors: ...
    def embed_queries(self, texts: Sequence[str]) -> Vectors: ...
    def warm_up(self) -> None: ...


def available_cpus() -> int:
    """CPUs this process may run on (its affinity: a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(eq=False)
class _Request:
    texts: Sequence[str]
    rows: list[Vectors | None] = field(default_factory=list)
    left: int = 0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class SharedBatcher:
    """Wraps an embedder: embed() from many threads, batches formed across callers."""

    def __init__(self, inner: DocumentEmbedder, *, batch_size: int, runners: int) -> None:
        self.inner = inner
        self._batch_size = batch_size
        self._runners = max(1, runners)
        self._pending: list[tuple[str, _Request, int]] = []
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False

    # The Embedder protocol, delegated.
    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def tokenizer_path(self) -> Path:
        return self.inner.tokenizer_path

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    @property
    def dimensions(self) -> int:
        return int(getattr(self.inner, "dimensions"))  # noqa: B009

    def warm_up(self) -> None:
        self.inner.warm_up()

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        # A question is one short text a person waits for: it skips the queue.
        return self.inner.embed_queries(texts)

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return self.inner.embed(texts)
        request = _Request(texts, rows=[None] * len(texts), left=len(texts))
        with self._cond:
            if self._closed:
                raise RuntimeError("the embedding batcher is closed")
            self._start_runners()
            self._pending.extend((text, request, i) for i, text in enumerate(texts))
            self._cond.notify_all()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return np.stack([row for row in request.rows if row is not None])

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()

    def _start_runners(self) -> None:
        if self._threads:
            return
        for n in range(self._runners):
            thread = threading.Thread(target=self._run, name=f"embed-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _next_batch(self) -> list[tuple[str, _Request, int]] | None:
        """The batch_size shortest waiting texts, whoever asked for them."""
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if not self._pending:
                return None
            self._pending.sort(key=lambda item: len(item[0]))
            batch = self._pending[: self._batch_size]
            del self._pending[: self._batch_size]
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                vectors = self.inner.embed([text for text, _, _ in batch])
            except BaseException as exc:  # handed to every caller of the batch
                for _, request, _ in batch:
                    self._finish(request, error=exc)
                continue
            for (_, request, index), vector in zip(batch, vectors, strict=True):
                request.rows[index] = vector
                self._finish(request)

    def _finish(self, request: _Request, error: BaseException | None = None) -> None:
        with self._cond:
            if error is not None and request.error is None:
                request.error = error
            request.left -= 1
            if request.left == 0:
                request.done.set()
