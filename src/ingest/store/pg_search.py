"""PostgreSQL flavour of the searches: pgvector HNSW and full-text search."""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, TSQUERY

from ingest.store import bm25
from ingest.store.keywords import query_terms, rarest_terms
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
    conn: sa.Connection,
    filtered: Any,
    query: str,
    k: int,
    *,
    rank_limit: int,
    has_filters: bool = True,
) -> list[tuple[int, float]]:
    """Top-k chunk pks by BM25 (store/bm25.py: FTS5's formula and constants).

    Scoring must read every row it ranks, and an OR of common words matches most
    of a large table. So the rows to rank are those matching the query's rarest
    lexemes (exact document frequencies from keyword_lexemes), at most
    `rank_limit` of them; they are then scored against every lexeme of the
    query. Rows holding none of the rare lexemes would score at most the common
    lexemes' small idf, which is why BM25 loses little by skipping them.

    Lexemes no chunk holds (df 0) match nothing and add nothing to any score, so
    they are left out of both: a query's unknown word (a number, a typo) no longer
    costs a search of its own before the common words are ranked. Unfiltered, the
    rows come from chunks alone, without the joins a filter needs."""
    terms = query_terms(query)
    if not terms:
        return []
    # psycopg prepares a statement run five times; PostgreSQL's generic plan for it
    # cannot see which lexemes the tsquery holds and picks a 6x slower path.
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    stats = bm25.query_stats(conn, terms).known()
    if not stats.lexemes:
        return []
    if not has_filters:
        filtered = None
    frequencies = [(x, float(n)) for x, n in zip(stats.lexemes, stats.matches, strict=True)]
    chosen = rarest_terms(frequencies, rank_limit)
    ranked = _rank_matches(conn, filtered, chosen, stats, rank_limit, k)
    if len(ranked) < k and len(chosen) < len(stats.lexemes):
        # Every row matching the rare lexemes is ranked already; the commoner ones
        # make up the rest, from the first rank_limit rows matching any lexeme.
        more = _rank_matches(conn, filtered, stats.lexemes, stats, rank_limit, k)
        seen = {pk for pk, _ in ranked}
        ranked = sorted(
            ranked + [hit for hit in more if hit[0] not in seen], key=lambda hit: (-hit[1], hit[0])
        )[:k]
    return ranked


def _tsquery(lexemes: list[str]) -> str:
    """An OR of these lexemes as tsquery text, each quoted: matched as they are,
    with no second round of parsing or stemming."""
    quoted = ("'" + x.replace("\\", "\\\\").replace("'", "''") + "'" for x in lexemes)
    return " | ".join(quoted)


def _rank_matches(
    conn: sa.Connection,
    filtered: Any,
    match_lexemes: list[str],
    stats: bm25.QueryStats,
    limit: int,
    k: int,
) -> list[tuple[int, float]]:
    """Up to `limit` chunks matching any of match_lexemes (and `filtered`, unless
    None), the best k by BM25 against all of the query's lexemes."""
    tsv: sa.ColumnElement[Any] = sa.literal_column("chunks.tsv")
    length: sa.ColumnElement[Any] = sa.literal_column("chunks.keyword_length")
    matching = sa.select(chunks.c.pk, tsv.label("tsv"), length.label("length")).where(
        tsv.op("@@")(sa.cast(_tsquery(match_lexemes), TSQUERY))
    )
    if filtered is not None:  # a chunk's document and collection, for the filter
        matching = filtered(
            matching.join(documents, documents.c.id == chunks.c.document_id).join(
                collections, collections.c.id == documents.c.collection_id
            )
        )
    candidates = matching.limit(limit).subquery()
    lexemes = sa.bindparam("lexemes", stats.lexemes, type_=ARRAY(sa.Text))
    idfs = sa.bindparam("idfs", stats.idf, type_=ARRAY(sa.Float))
    # Only the query's lexemes of each row's tsvector, with their positions: mark
    # them (setweight) and keep the marked (ts_filter), both in C, then unnest.
    only_query = sa.func.ts_filter(
        sa.func.setweight(candidates.c.tsv, sa.literal_column("'A'"), lexemes),
        sa.literal_column("'{a}'"),
    )
    found = sa.func.unnest(only_query).table_valued("lexeme", "positions").lateral("found")
    tf = sa.func.cardinality(found.c.positions)
    norm = 1.0 - bm25.B + bm25.B * candidates.c.length / stats.average_length
    weights = (
        sa.func.unnest(lexemes, idfs).table_valued("lexeme", "idf").render_derived(name="weights")
    )
    score = weights.c.idf * tf * (bm25.K1 + 1) / (tf + bm25.K1 * norm)
    stmt = (
        sa.select(candidates.c.pk, sa.func.sum(score).label("score"))
        .select_from(
            candidates.join(found, sa.true()).join(weights, weights.c.lexeme == found.c.lexeme)
        )
        .group_by(candidates.c.pk)
        .order_by(sa.desc("score"), candidates.c.pk)
        .limit(k)
    )
    return [(int(r.pk), float(r.score)) for r in conn.execute(stmt)]
