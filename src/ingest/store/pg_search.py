"""PostgreSQL flavour of the searches: pgvector HNSW and full-text search."""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

from ingest.store.keywords import query_terms
from ingest.store.schema import chunks, collections, documents, vectors

HNSW_DIMENSIONS = 384  # the width migration 0001 builds an HNSW index for
ANN_OVERFETCH = 4


def vector_ranking(
    conn: sa.Connection,
    filtered: Any,
    model: str,
    query_vector: bytes,
    k: int,
    *,
    has_filters: bool,
    ef_search: int,
) -> list[tuple[int, float]]:
    """Top-k chunk pks by cosine similarity.

    Unfiltered: the HNSW index picks candidate texts (over-fetched, since several
    chunks can share a text), then they are joined to chunks. Filtered: an exact
    scan of the filtered rows, because pgvector 0.6 cannot filter inside the index
    walk without losing results."""
    dim = len(query_vector) // 4
    literal = "[" + ",".join(repr(float(x)) for x in np.frombuffer(query_vector, dtype="<f4")) + "]"
    typed = f"vector({dim})"
    distance: sa.ColumnElement[float] = sa.literal_column(
        f"(vectors.embedding::{typed} <=> '{literal}'::{typed})"
    )
    base = (
        sa.select(chunks.c.pk, distance.label("distance"))
        .join(documents, documents.c.id == chunks.c.document_id)
        .join(collections, collections.c.id == documents.c.collection_id)
        .join(vectors, sa.and_(vectors.c.model == model, vectors.c.text_hash == chunks.c.text_hash))
        .where(vectors.c.dim == dim)
    )
    if not has_filters and dim == HNSW_DIMENSIONS:
        conn.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
        nearest = (
            sa.select(vectors.c.text_hash)
            .where(vectors.c.model == model, vectors.c.dim == dim)
            .order_by(distance)
            .limit(k * ANN_OVERFETCH)
        )
        base = base.where(vectors.c.text_hash.in_(nearest))
    stmt = filtered(base).order_by(sa.literal_column("distance")).limit(k)
    return [(int(r.pk), 1.0 - float(r.distance)) for r in conn.execute(stmt)]


def keyword_ranking(
    conn: sa.Connection, filtered: Any, query: str, k: int
) -> list[tuple[int, float]]:
    terms = query_terms(query)
    if not terms:
        return []
    tsquery = sa.func.to_tsquery("english", " | ".join(terms))
    tsv: sa.ColumnElement[Any] = sa.literal_column("chunks.tsv")
    rank = sa.func.ts_rank_cd(tsv, tsquery).label("rank")
    stmt = (
        sa.select(chunks.c.pk, rank)
        .join(documents, documents.c.id == chunks.c.document_id)
        .join(collections, collections.c.id == documents.c.collection_id)
        .where(tsv.op("@@")(tsquery))
    )
    stmt = filtered(stmt).order_by(sa.desc("rank")).limit(k)
    return [(int(r.pk), float(r.rank)) for r in conn.execute(stmt)]
