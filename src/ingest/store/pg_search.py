"""PostgreSQL flavour of the searches: pgvector HNSW and full-text search."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import sqlalchemy as sa

from ingest.store.keywords import query_terms, rarest_terms
from ingest.store.schema import chunks, collections, documents, vectors

HNSW_DIMENSIONS = 384  # the width migration 0001 builds an HNSW index for
ANN_OVERFETCH = 4
LENGTH_NORMALISATION = 1  # ts_rank divides by 1 + log(document length)
STATS_MAX_AGE_S = 300.0


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
    stats: LexemeStats,
) -> list[tuple[int, float]]:
    """Top-k chunk pks by ts_rank (normalised by document length).

    ts_rank must read every matching row, and an OR of common words matches most
    of a large table (at 100k chunks, 800 ms). So the rows to rank are those
    matching the query's rarest words (chosen from the planner's lexeme
    statistics), at most `rank_limit` of them; they are then ranked against
    every word of the query. On SciFact, ts_rank with length normalisation
    scores nDCG@10 0.61 where ts_rank_cd scores 0.37, at a seventh of the cost."""
    terms = query_terms(query)
    if not terms:
        return []
    # psycopg prepares a statement run five times; PostgreSQL's generic plan for it
    # cannot see which words the tsquery holds and picks a 6x slower path.
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    estimates = stats.estimate(conn, terms)
    words = [t for t, _ in estimates]
    chosen = rarest_terms(estimates, rank_limit)
    if not chosen:
        return []
    ranked = _rank_matches(conn, filtered, chosen, words, rank_limit, k)
    if len(ranked) < k and len(chosen) < len(words):
        # Every row matching the rare words is ranked already; the commoner words
        # make up the rest, from the first rank_limit rows matching any word.
        more = _rank_matches(conn, filtered, words, words, rank_limit, k)
        seen = {pk for pk, _ in ranked}
        ranked = sorted(
            ranked + [hit for hit in more if hit[0] not in seen], key=lambda hit: (-hit[1], hit[0])
        )[:k]
    return ranked


def _rank_matches(
    conn: sa.Connection,
    filtered: Any,
    match_words: list[str],
    rank_words: list[str],
    limit: int,
    k: int,
) -> list[tuple[int, float]]:
    """Up to `limit` chunks matching any of match_words, the best k by ts_rank
    against all of rank_words."""
    tsv: sa.ColumnElement[Any] = sa.literal_column("chunks.tsv")
    matching = (
        sa.select(chunks.c.pk, tsv.label("tsv"))
        .join(documents, documents.c.id == chunks.c.document_id)
        .join(collections, collections.c.id == documents.c.collection_id)
        .where(tsv.op("@@")(sa.func.to_tsquery("english", " | ".join(match_words))))
    )
    candidates = filtered(matching).limit(limit).subquery()
    whole_query = sa.func.to_tsquery("english", " | ".join(rank_words))
    rank = sa.func.ts_rank(candidates.c.tsv, whole_query, LENGTH_NORMALISATION).label("rank")
    stmt = sa.select(candidates.c.pk, rank).order_by(sa.desc("rank"), candidates.c.pk).limit(k)
    return [(int(r.pk), float(r.rank)) for r in conn.execute(stmt)]


class LexemeStats:
    """How many chunks each word is expected to match, from what ANALYZE keeps for
    chunks.tsv (its most common lexemes and their frequencies), re-read every few
    minutes. Without statistics (a table never analysed) every word is taken as
    rare, which is right for the small tables that have none."""

    def __init__(self, max_age_s: float = STATS_MAX_AGE_S) -> None:
        self.max_age_s = max_age_s
        self._frequency: dict[str, float] = {}
        self._unlisted = 0.0
        self._rows = 0.0
        self._read_at = -math.inf

    def estimate(self, conn: sa.Connection, terms: list[str]) -> list[tuple[str, float]]:
        """(term, estimated matching chunks) for the terms that have lexemes."""
        if time.monotonic() - self._read_at > self.max_age_s:
            self._refresh(conn)
        rows = conn.execute(
            sa.text(
                "SELECT term, tsvector_to_array(to_tsvector('english', term)) AS lexemes "
                "FROM unnest(CAST(:terms AS text[])) AS term"
            ),
            {"terms": terms},
        )
        return [(str(r.term), self._matches(r.lexemes)) for r in rows if r.lexemes]

    def _matches(self, lexemes: list[str]) -> float:
        # A word the parser splits into several lexemes matches no more than its rarest.
        return self._rows * min(self._frequency.get(x, self._unlisted) for x in lexemes)

    def _refresh(self, conn: sa.Connection) -> None:
        row = conn.execute(
            sa.text(
                "SELECT s.most_common_elems::text::text[] AS lexemes, "
                "s.most_common_elem_freqs AS freqs, c.reltuples AS rows "
                "FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename "
                "WHERE s.schemaname = current_schema() AND s.tablename = 'chunks' "
                "AND s.attname = 'tsv' AND c.relnamespace = current_schema()::regnamespace"
            )
        ).first()
        if row is None or not row.lexemes:
            self._frequency, self._unlisted, self._rows = {}, 0.0, 0.0
        else:
            # The frequencies are followed by their minimum, maximum and the null
            # fraction; a lexeme not listed is rarer than the minimum (the planner
            # takes half of it, as we do).
            self._frequency = dict(zip(row.lexemes, row.freqs, strict=False))
            self._unlisted = float(row.freqs[-3]) / 2
            self._rows = max(float(row.rows), 0.0)
        self._read_at = time.monotonic()
