"""The in-process vector cache (store/vector_cache.py) on a SQLite file: commits that
do not touch what vector search reads (a worker's heartbeat) keep the loaded copy;
a new chunk is found by the very next search."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ingest.embedding import to_blob
from ingest.pipeline.chunking import text_hash
from ingest.store import ChunkRecord, Store
from ingest.store import vector_cache as vc

MODEL, DIM = "test-model", 8


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'cache.db'}")
    store.migrate()
    try:
        yield store
    finally:
        store.close()


def add_document(store: Store, name: str, vector: np.ndarray) -> None:
    text = f"chunk of {name}"
    store.put_vectors(MODEL, DIM, {text_hash(text): to_blob(vector.astype(np.float32))})
    chunk = ChunkRecord(
        id=hashlib.sha256(name.encode()).hexdigest()[:32],
        ordinal=0,
        text=text,
        text_hash=text_hash(text),
        token_count=3,
        page=None,
        heading=None,
    )
    with store.transaction() as tx:
        tx.documents.replace(
            collection="c",
            source_uri=name,
            content_hash=name,
            fingerprint="f",
            size_bytes=1,
            metadata={},
            chunk_rows=[chunk],
        )


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    return v


def test_unrelated_commits_keep_the_copy_and_a_new_chunk_is_found_at_once(
    store: Store,
) -> None:
    add_document(store, "a", unit(0))
    cache = vc.cache_for(store.engine)
    assert cache is not None
    loads: list[int] = []

    def load(version: int) -> vc.VectorSnapshot | None:
        loads.append(version)
        with store.engine.connect() as conn:
            return vc.load_snapshot(conn, MODEL, version)

    first = cache.snapshot(MODEL, load)
    assert first is not None
    assert loads == [first.version]

    # A worker's heartbeat commits, as an inline server's worker does every 2 s: the
    # copy stays (before, the search fell back to the exact SQL scan: 2-6 s at 100k).
    store.workers.register("w1", hostname="h", pid=1, queues=["ingest"], concurrency=1)
    store.workers.heartbeat("w1", 0)
    assert cache.snapshot(MODEL, load) is first
    assert len(loads) == 1

    # A new chunk changes what the search reads: never answered from the old copy.
    add_document(store, "b", unit(1))
    hits = store.vector_search(MODEL, to_blob(unit(1)), 1)
    assert len(hits) == 1
    assert hits[0][1] == pytest.approx(1.0)
    assert store.hits([hits[0][0]])[hits[0][0]].text == "chunk of b"
