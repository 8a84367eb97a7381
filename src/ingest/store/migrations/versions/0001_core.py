"""Core schema: collections, documents, chunks, vectors, keyword index.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ingest.store.schema import Embedding

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# The default model's width; other widths work, searched exactly until indexed.
HNSW_DIMENSIONS = 384


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", ts, nullable=False),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "collection_id",
            sa.Integer,
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("source_uri", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.UniqueConstraint("collection_id", "source_uri", name="uq_documents_source"),
    )
    op.create_index("ix_documents_status", "documents", ["status"])
    op.create_table(
        "chunks",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column(
            "document_id",
            sa.String(32),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("token_count", sa.Integer, nullable=False),
        sa.Column("page", sa.Integer),
        sa.Column("heading", sa.Text),
        sa.UniqueConstraint("document_id", "ordinal", name="uq_chunks_ordinal"),
    )
    op.create_index("ix_chunks_document", "chunks", ["document_id"])
    op.create_index("ix_chunks_text_hash", "chunks", ["text_hash"])
    op.create_table(
        "vectors",
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("text_hash", sa.String(64), primary_key=True),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("embedding", Embedding, nullable=False),
        sa.Column("created_at", ts, nullable=False),
    )
    if postgres:
        # Keyword index: a generated tsvector with a GIN index. Vector index: HNSW
        # (cosine) over the default width, partial on dim so other widths coexist.
        op.execute(
            "ALTER TABLE chunks ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
        )
        op.execute("CREATE INDEX ix_chunks_tsv ON chunks USING gin (tsv)")
        op.execute(
            f"CREATE INDEX ix_vectors_hnsw_{HNSW_DIMENSIONS} ON vectors USING hnsw "
            f"((embedding::vector({HNSW_DIMENSIONS})) vector_cosine_ops) "
            f"WITH (m = 16, ef_construction = 128) WHERE dim = {HNSW_DIMENSIONS}"
        )
    else:
        op.execute("CREATE VIRTUAL TABLE chunk_fts USING fts5(text, tokenize='porter unicode61')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE chunk_fts")
    op.drop_table("vectors")
    op.drop_table("chunks")
    op.drop_table("documents")
    op.drop_table("collections")
