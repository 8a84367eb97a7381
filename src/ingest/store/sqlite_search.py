"""SQLite's side of search: exact cosine through sqlite-vec (candidates picked by
the in-process vector cache), and FTS5 BM25. PostgreSQL's is pg_search.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.store import vector_cache
from ingest.store.engine import read_transaction
from ingest.store.keywords import fts5_match_expression
from ingest.store.schema import CHUNK_FTS, chunks, collections, documents, vectors

Filter = Callable[[sa.Select[Any]], sa.Select[Any]]


def vector_ranking(
    engine: Engine,
    filtered: Filter,
    model: str,
    query_vector: bytes,
    k: int,
    *,
    has_filters: bool,
) -> list[tuple[int, float]]:
    """Top-k chunks by cosine similarity: [(chunk pk, similarity)], exact.

    sqlite-vec's exact scan costs ~70 ms at 100k chunks. On a SQLite file an
    in-process copy of the vectors (store/vector_cache.py, reloaded whenever
    a write to the chunks or vectors commits) first picks the few chunks that can be in the top
    k; sqlite-vec then scores only those, so the answer is the scan's."""
    candidates: list[int] | None = None
    allowed: set[str] | None = None
    cache = vector_cache.cache_for(engine)
    if cache is not None and k > 0 and len(query_vector) % 4 == 0:

        def load(version: int) -> vector_cache.VectorSnapshot | None:
            with read_transaction(engine) as conn:
                return vector_cache.load_snapshot(conn, model, version)

        snapshot = cache.snapshot(model, load)
        if snapshot is not None:
            if has_filters:
                doc_ids = filtered(
                    sa.select(documents.c.id).join(
                        collections, collections.c.id == documents.c.collection_id
                    )
                )
                with read_transaction(engine) as conn:
                    allowed = set(conn.execute(doc_ids).scalars())
            query = np.frombuffer(query_vector, dtype="<f4")
            candidates = snapshot.candidates(query, k, allowed)
    distance = sa.func.vec_distance_cosine(vectors.c.embedding, query_vector)
    if candidates is not None:
        return _score_candidates(engine, model, distance, candidates, allowed, k)
    stmt = (
        sa.select(chunks.c.pk, distance.label("distance"))
        .join(documents, documents.c.id == chunks.c.document_id)
        .join(collections, collections.c.id == documents.c.collection_id)
        .join(
            vectors,
            sa.and_(vectors.c.model == model, vectors.c.text_hash == chunks.c.text_hash),
        )
        .order_by(distance)
        .limit(k)
    )
    with read_transaction(engine) as conn:
        return [(int(r.pk), 1.0 - float(r.distance)) for r in conn.execute(filtered(stmt))]


def _score_candidates(
    engine: Engine,
    model: str,
    distance: sa.ColumnElement[Any],
    candidates: list[int],
    allowed: set[str] | None,
    k: int,
) -> list[tuple[int, float]]:
    if not candidates:
        return []
    # sqlite-vec scores the candidates, found by key in each table: joined
    # in one statement, SQLite (no ANALYZE statistics) walks every vector of
    # the model, or every document of the collection, instead. Candidates
    # come from chunks with a document in a collection, in `allowed` if set.
    chosen = sa.select(chunks.c.pk, chunks.c.text_hash, chunks.c.document_id).where(
        chunks.c.pk.in_(candidates)
    )
    with read_transaction(engine) as conn:
        hash_of = {
            int(r.pk): str(r.text_hash)
            for r in conn.execute(chosen)
            if allowed is None or r.document_id in allowed
        }
        distances = {
            str(r.text_hash): float(r.distance)
            for r in conn.execute(
                sa.select(vectors.c.text_hash, distance.label("distance")).where(
                    vectors.c.model == model,
                    vectors.c.text_hash.in_(set(hash_of.values())),
                )
            )
        }
    scored = sorted((distances[h], pk) for pk, h in hash_of.items() if h in distances)
    return [(pk, 1.0 - d) for d, pk in scored[:k]]


def keyword_ranking(
    engine: Engine, filtered: Filter, query: str, k: int, *, has_filters: bool
) -> list[tuple[int, float]]:
    """Top-k chunks by BM25: [(chunk pk, score, higher is better)].

    Unfiltered, the query reads the FTS5 table alone and sorts by an explicit
    bm25(): SQLite then keeps just the best k while FTS5 scores the matches,
    where `ORDER BY rank` -- or any join -- sorts every match first (at 100k
    chunks an OR query matches ~40%: 25 ms instead of 45-70 ms). The k rows
    are checked against the chunks they index; should one be an orphan, the
    joined query decides, as it does for filtered searches."""
    match_expression = fts5_match_expression(query)
    if not match_expression:
        return []
    with read_transaction(engine) as conn:
        if not has_filters and k > 0:
            # bm25() is FTS5's rank: smaller is better.
            ranked = conn.exec_driver_sql(
                f"SELECT rowid, bm25({CHUNK_FTS}) AS score FROM {CHUNK_FTS} "
                f"WHERE {CHUNK_FTS} MATCH ? ORDER BY score, rowid LIMIT ?",
                (match_expression, k),
            ).all()
            pks = [int(r.rowid) for r in ranked]
            indexed = conn.execute(
                sa.select(chunks.c.pk)
                .join(documents, documents.c.id == chunks.c.document_id)
                .join(collections, collections.c.id == documents.c.collection_id)
                .where(chunks.c.pk.in_(pks))
            ).scalars()
            if len(set(indexed)) == len(pks):
                return [(pk, -float(r.score)) for pk, r in zip(pks, ranked, strict=True)]
        fts = sa.table(CHUNK_FTS, sa.column("rowid"), sa.column("rank"))
        stmt = (
            sa.select(chunks.c.pk, fts.c.rank)
            .select_from(fts)
            .join(chunks, chunks.c.pk == fts.c.rowid)
            .join(documents, documents.c.id == chunks.c.document_id)
            .join(collections, collections.c.id == documents.c.collection_id)
            .where(sa.text(f"{CHUNK_FTS} MATCH :q").bindparams(q=match_expression))
            .order_by(fts.c.rank)
            .limit(k)
        )
        # FTS5 rank is bm25() negated: smaller is better.
        return [(int(r.pk), -float(r.rank)) for r in conn.execute(filtered(stmt))]
