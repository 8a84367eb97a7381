"""PostgreSQL: the statistics BM25 ranks keyword matches with, kept with the chunks.

`keyword_lexemes` holds, per lexeme, how many chunks contain it and how many
tokens it accounts for; the row of the empty lexeme '' (which no text yields)
holds the totals: every chunk and every token. `chunks.keyword_length` is a
chunk's token count as BM25 measures it (the positions in its tsvector). The
writer of chunks (store/documents.py) updates the counts in the same
transaction; this migration counts the chunks already there. SQLite's FTS5 keeps
its own statistics: nothing changes there.

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION keyword_length(tsvector) RETURNS integer "
        "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS "
        "$$ SELECT coalesce(sum(pg_catalog.cardinality(positions)), 0)::integer "
        "FROM pg_catalog.unnest($1) $$"
    )
    # Generated from the text, as tsv is (a generated column cannot read another).
    op.execute(
        "ALTER TABLE chunks ADD COLUMN keyword_length integer "
        "GENERATED ALWAYS AS (keyword_length(to_tsvector('english', text))) STORED"
    )
    op.execute(
        "CREATE TABLE keyword_lexemes ("
        "lexeme text PRIMARY KEY, chunks bigint NOT NULL, tokens bigint NOT NULL)"
    )
    op.execute(
        "INSERT INTO keyword_lexemes (lexeme, chunks, tokens) "
        "SELECT t.lexeme, count(*), sum(cardinality(t.positions)) "
        "FROM chunks c CROSS JOIN LATERAL unnest(c.tsv) t GROUP BY t.lexeme "
        "UNION ALL "
        "SELECT '', count(*), coalesce(sum(keyword_length), 0) FROM chunks"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE keyword_lexemes")
    op.execute("ALTER TABLE chunks DROP COLUMN keyword_length")
    op.execute("DROP FUNCTION keyword_length(tsvector)")
