"""An in-process copy of a SQLite store's vectors, to find exact-scan candidates fast.

The vectors table stays the source of truth. This module keeps, per engine and
model, one numpy matrix of the unit vectors of every chunk (row i = chunk pks[i]),
loaded from SQL and reloaded when the database changed. A query multiplies the
matrix by the query vector (~10 ms at 100k x 384 on 2 cores, against ~70 ms for
sqlite-vec's exact scan) and returns the chunks whose similarity is within a
small margin of the k-th best: a superset of the true top k. Store.vector_search
then scores just those candidates with sqlite-vec's own vec_distance_cosine, so
results, scores and order are those of the exact scan.

Staleness: a private watcher connection reads `search_generation.n`, which triggers
(migration 0010) bump in the same transaction as any write to the chunks, vectors,
documents or collections that the search reads -- from this process or another;
other commits (heartbeats, job progress) leave it alone. Before that migration it
reads `PRAGMA data_version`, which changes whenever another connection commits.
The version is read BEFORE a snapshot is loaded, so a commit racing the load only
causes one extra reload, never a stale answer. While such writes keep arriving (an
ingest running beside searches), reloads are rate limited and searches in between
use the exact SQL scan instead: never stale, never reloading the matrix on every
query.

Only file-backed SQLite uses this; anything else keeps the plain SQL scan.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

# float32 dot products of unit vectors differ from sqlite-vec's by ~1e-7; anything
# within this margin of the k-th best is re-scored exactly.
SCORE_MARGIN = 1e-4
# More candidates than this (masses of identical vectors): let SQL do the scan.
MAX_CANDIDATES = 4096
# After a reload, wait at least this long -- and this many reload durations --
# before reloading again; queries in between that find the data changed use SQL.
MIN_RELOAD_INTERVAL_S = 1.0
RELOAD_INTERVAL_FACTOR = 5.0

GENERATION_SQL = "SELECT n FROM search_generation WHERE id = 1"

Rows = Iterable[Sequence[Any]]  # (chunk pk, document id, float32 blob) rows


@dataclass(frozen=True, slots=True)
class VectorSnapshot:
    """Every chunk's vector for one model, as of one database version."""

    version: int
    pks: NDArray[np.int64]
    doc_codes: NDArray[np.int32]  # row -> index into doc_ids
    doc_ids: dict[str, int]
    matrix: NDArray[np.float32]  # unit rows (zero rows stay zero)

    @property
    def dimensions(self) -> int:
        return int(self.matrix.shape[1])

    def candidates(
        self, query: NDArray[np.float32], k: int, allowed_docs: Collection[str] | None
    ) -> list[int] | None:
        """Chunk pks that must contain the exact top k (all the allowed ones if fewer
        than k); None when this snapshot cannot answer and SQL must scan."""
        if query.shape != (self.dimensions,) or not np.all(np.isfinite(query)):
            return None
        norm = float(np.linalg.norm(query))
        if norm == 0.0:
            return None
        # einsum, not `@`: a multi-threaded BLAS call here fights the embedding
        # model's threads for the two cores (a query embedding took 2x as long).
        scores = np.einsum("ij,j->i", self.matrix, query / norm)
        if allowed_docs is not None:
            codes = [self.doc_ids[d] for d in allowed_docs if d in self.doc_ids]
            allowed_rows = np.isin(self.doc_codes, np.asarray(codes, dtype=np.int32))
            scores = np.where(allowed_rows, scores, -np.inf)
            eligible = int(np.count_nonzero(allowed_rows))
        else:
            eligible = len(scores)
        if eligible == 0:
            return []
        if eligible <= k:
            rows = np.flatnonzero(np.isfinite(scores))
        else:
            kth = float(np.partition(scores, len(scores) - k)[len(scores) - k])
            rows = np.flatnonzero(scores >= kth - SCORE_MARGIN)
        if len(rows) > MAX_CANDIDATES:
            return None
        return [int(pk) for pk in self.pks[rows]]


def build_snapshot(version: int, count: int, rows: Rows) -> VectorSnapshot | None:
    """From `count` (pk, document id, blob) rows; None if the vectors disagree in size."""
    pks = np.empty(count, dtype=np.int64)
    doc_codes = np.empty(count, dtype=np.int32)
    doc_ids: dict[str, int] = {}
    matrix: NDArray[np.float32] | None = None
    n = 0
    for pk, doc_id, blob in rows:
        vector = np.frombuffer(blob, dtype="<f4")
        if matrix is None:
            matrix = np.empty((count, len(vector)), dtype=np.float32)
        if n >= count or len(vector) != matrix.shape[1]:
            return None
        matrix[n] = vector
        pks[n] = pk
        doc_codes[n] = doc_ids.setdefault(doc_id, len(doc_ids))
        n += 1
    if n != count:
        return None
    if matrix is None:
        matrix = np.zeros((0, 0), dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    matrix /= norms
    return VectorSnapshot(version, pks, doc_codes, doc_ids, matrix)


def load_snapshot(conn: Connection, model: str, version: int) -> VectorSnapshot | None:
    """Every searchable chunk's vector for `model` (the exact scan's joins), read in
    the caller's transaction so the count and the rows agree."""
    joined = (
        "FROM chunks JOIN documents ON documents.id = chunks.document_id "
        "JOIN collections ON collections.id = documents.collection_id "
        "JOIN vectors ON vectors.model = ? AND vectors.text_hash = chunks.text_hash"
    )
    count = conn.exec_driver_sql(f"SELECT count(*) {joined}", (model,)).scalar_one()
    rows = conn.exec_driver_sql(
        f"SELECT chunks.pk, chunks.document_id, vectors.embedding {joined} ORDER BY chunks.pk",
        (model,),
    )
    return build_snapshot(version, int(count), rows)


Loader = Callable[[int], VectorSnapshot | None]


class VectorCache:
    """The snapshots of one SQLite database file, one per embedding model."""

    def __init__(self, database_path: str) -> None:
        import sqlean

        self._watcher: Any = sqlean.connect(
            database_path, check_same_thread=False, isolation_level=None
        )
        self._error: type[Exception] = sqlean.OperationalError
        self._watcher_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._snapshots: dict[str, VectorSnapshot] = {}
        self._next_reload_at: dict[str, float] = {}

    def version(self) -> int:
        """The counter migration 0010's triggers bump on every write to the rows vector
        search reads (other commits, a worker's heartbeat, leave it alone); before that
        migration, `PRAGMA data_version`, negated so the two never compare equal."""
        with self._watcher_lock:
            try:
                # fetchall: a statement left open would hold its read snapshot.
                rows = self._watcher.execute(GENERATION_SQL).fetchall()
            except self._error:
                rows = []
            if rows:
                return int(rows[0][0])
            return -1 - int(self._watcher.execute("PRAGMA data_version").fetchone()[0])

    def snapshot(self, model: str, load: Loader) -> VectorSnapshot | None:
        """A snapshot of the current data, or None: then the caller scans in SQL."""
        version = self.version()
        current = self._snapshots.get(model)
        if current is not None and current.version == version:
            return current
        with self._load_lock:
            current = self._snapshots.get(model)
            if current is not None and current.version == version:
                return current
            if time.monotonic() < self._next_reload_at.get(model, 0.0):
                return None  # changed again too soon after a reload: SQL this time
            started = time.monotonic()
            loaded = load(version)
            took = time.monotonic() - started
            self._next_reload_at[model] = time.monotonic() + max(
                MIN_RELOAD_INTERVAL_S, RELOAD_INTERVAL_FACTOR * took
            )
            if loaded is None:
                self._snapshots.pop(model, None)
            else:
                self._snapshots[model] = loaded
            return loaded

    def close(self) -> None:
        with self._watcher_lock:
            self._watcher.close()
        self._snapshots.clear()


_caches: weakref.WeakKeyDictionary[Engine, VectorCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(engine: Engine) -> VectorCache | None:
    """The engine's cache; None unless it is a file-backed SQLite database."""
    url = engine.url
    path = url.database
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return None
    if path.startswith("file:") or url.query.get("uri"):
        return None
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = VectorCache(path)
            _caches[engine] = cache
            event.listen(engine, "engine_disposed", lambda _: _drop(engine))
        return cache


def _drop(engine: Engine) -> None:
    with _caches_lock:
        cache = _caches.pop(engine, None)
    if cache is not None:
        cache.close()
