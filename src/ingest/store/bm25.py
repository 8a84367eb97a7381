"""PostgreSQL: the statistics BM25 needs, kept exact and transactional (migration 0009).

`keyword_lexemes` counts, per lexeme, the chunks containing it (df) and the tokens
it accounts for; the row of the empty lexeme '' holds the totals (chunks, tokens),
from which the average chunk length comes. Each change of chunks applies its
difference in ONE statement, in lexeme order, with INSERT ... ON CONFLICT DO
UPDATE: concurrent writers add to the same rows without losing an update (each
waits for the other's row lock, then adds to the committed count), and since
every writer takes its row locks in the same order, two never wait on each
other in a cycle.

Scoring follows FTS5's bm25() so both backends rank alike: k1 1.2, b 0.75,
idf = ln((N - df + 0.5) / (df + 0.5)), floored at 1e-6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

K1 = 1.2
B = 0.75
MIN_IDF = 1e-6  # FTS5's floor: a word in most chunks still counts a little
TOTALS = ""  # the lexeme of the totals row; no text yields an empty lexeme

# The chunks removed (-1) and added (+1), their lexemes, and the difference per
# lexeme plus the totals row, applied in lexeme order.
_CHANGE = sa.text(
    """
    WITH changed AS (
        SELECT -1 AS sign, tsv FROM chunks WHERE document_id = ANY(CAST(:removed AS text[]))
        UNION ALL
        SELECT 1, to_tsvector('english', t) FROM unnest(CAST(:added AS text[])) AS t
    ), occurrences AS (
        SELECT o.lexeme, c.sign, c.sign * cardinality(o.positions) AS tokens
        FROM changed c CROSS JOIN LATERAL unnest(c.tsv) AS o
    ), difference AS (
        SELECT lexeme, sum(sign) AS chunks, sum(tokens) AS tokens
        FROM occurrences GROUP BY lexeme
        UNION ALL
        SELECT :totals, (SELECT coalesce(sum(sign), 0) FROM changed),
               (SELECT coalesce(sum(tokens), 0) FROM occurrences)
    )
    INSERT INTO keyword_lexemes AS k (lexeme, chunks, tokens)
    SELECT lexeme, chunks, tokens FROM difference
    WHERE chunks <> 0 OR tokens <> 0
    ORDER BY lexeme
    ON CONFLICT (lexeme) DO UPDATE
    SET chunks = k.chunks + excluded.chunks, tokens = k.tokens + excluded.tokens
    """
)


def record_change(
    conn: sa.Connection, *, removed_documents: Sequence[str], added_texts: Sequence[str]
) -> None:
    """Count out the chunks of `removed_documents` (still in the table: call this
    before deleting them) and count in the chunks about to be inserted with these
    texts, in the caller's transaction."""
    if not removed_documents and not added_texts:
        return
    conn.execute(
        _CHANGE,
        {"removed": list(removed_documents), "added": list(added_texts), "totals": TOTALS},
    )


def recount(conn: sa.Connection) -> None:
    """Count every chunk again, for chunks written around the writer (bulk loads
    with COPY). Locks the statistics against writers while it runs."""
    conn.exec_driver_sql("LOCK TABLE keyword_lexemes IN EXCLUSIVE MODE")
    conn.exec_driver_sql("DELETE FROM keyword_lexemes")
    conn.execute(
        sa.text(
            "INSERT INTO keyword_lexemes (lexeme, chunks, tokens) "
            "SELECT t.lexeme, count(*), sum(cardinality(t.positions)) "
            "FROM chunks c CROSS JOIN LATERAL unnest(c.tsv) t GROUP BY t.lexeme "
            "UNION ALL "
            "SELECT :totals, count(*), coalesce(sum(keyword_length), 0) FROM chunks"
        ),
        {"totals": TOTALS},
    )


@dataclass(frozen=True, slots=True)
class QueryStats:
    """What BM25 needs to know about a query's lexemes: df and idf of each (in
    query order, each once), and the collection's average chunk length."""

    lexemes: list[str]
    matches: list[int]
    idf: list[float]
    average_length: float

    def known(self) -> QueryStats:
        """Only the lexemes some chunk holds: the others match nothing and score 0."""
        keep = [i for i, n in enumerate(self.matches) if n > 0]
        return QueryStats(
            lexemes=[self.lexemes[i] for i in keep],
            matches=[self.matches[i] for i in keep],
            idf=[self.idf[i] for i in keep],
            average_length=self.average_length,
        )


def query_stats(conn: sa.Connection, terms: Sequence[str]) -> QueryStats:
    """The lexemes of the query's words (PostgreSQL's english stemming and
    stopwords, as the index has them) with their counts: a primary-key lookup each."""
    rows = conn.execute(
        sa.text(
            "SELECT q.lexeme, coalesce(k.chunks, 0) AS chunks, coalesce(k.tokens, 0) AS tokens "
            "FROM (SELECT DISTINCT ON (l.lexeme) l.lexeme, w.n "
            "      FROM unnest(CAST(:terms AS text[])) WITH ORDINALITY AS w(term, n) "
            "      CROSS JOIN LATERAL unnest(tsvector_to_array(to_tsvector('english', w.term))) "
            "      AS l(lexeme) ORDER BY l.lexeme, w.n) AS q "
            "LEFT JOIN keyword_lexemes k ON k.lexeme = q.lexeme "
            "UNION ALL "
            "SELECT NULL, chunks, tokens FROM keyword_lexemes WHERE lexeme = :totals"
        ),
        {"terms": list(terms), "totals": TOTALS},
    ).all()
    total_chunks, total_tokens = next(
        ((int(r.chunks), int(r.tokens)) for r in rows if r.lexeme is None), (0, 0)
    )
    found = [r for r in rows if r.lexeme is not None]
    return QueryStats(
        lexemes=[str(r.lexeme) for r in found],
        matches=[int(r.chunks) for r in found],
        idf=[idf(total_chunks, int(r.chunks)) for r in found],
        average_length=total_tokens / total_chunks if total_chunks else 1.0,
    )


def idf(chunks: int, matches: int) -> float:
    ratio = (chunks - matches + 0.5) / (matches + 0.5)
    return math.log(ratio) if ratio > 1.0 + MIN_IDF else MIN_IDF
