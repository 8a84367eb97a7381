"""Table definitions used by the queries in store/. Every time is epoch seconds (a
float). The schema itself comes from the Alembic migrations in store/migrations;
tests/integration/test_schema_matches_migrations.py keeps the two in step."""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

metadata = sa.MetaData()


class Embedding(sa.types.TypeDecorator[bytes]):
    """A float32 vector, bytes in Python. SQLite stores the little-endian blob that
    sqlite-vec reads; PostgreSQL stores a pgvector `vector`."""

    impl = sa.LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from pgvector.sqlalchemy import VECTOR

            return dialect.type_descriptor(VECTOR())
        return dialect.type_descriptor(sa.LargeBinary())

    def process_bind_param(self, value: bytes | None, dialect: sa.Dialect) -> Any:
        if value is None or dialect.name != "postgresql":
            return value
        return np.frombuffer(value, dtype="<f4")

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> bytes | None:
        if value is None or dialect.name != "postgresql":
            return value  # type: ignore[no-any-return]
        return np.asarray(value, dtype="<f4").tobytes()


collections = sa.Table(
    "collections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

documents = sa.Table(
    "documents",
    metadata,
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
    sa.Column("metadata", sa.JSON, key="meta", nullable=False),
    sa.Column("size_bytes", sa.BigInteger),
    sa.Column("chunk_count", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # The container (archive, e-mail) this document was expanded from; no foreign
    # key: the store deletes descendants itself (migration 0006).
    sa.Column("parent_id", sa.String(32)),
    sa.UniqueConstraint("collection_id", "source_uri", name="uq_documents_source"),
)

chunks = sa.Table(
    "chunks",
    metadata,
    # Integer key: the keyword index (FTS5) addresses rows by it.
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
    # Some of the chunk's text was read by OCR (migration 0011).
    sa.Column("ocr", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("document_id", "ordinal", name="uq_chunks_ordinal"),
)

# Content-addressed: one row per (model, chunk text). It is both the vector
# table the search reads and the embedding cache that makes re-ingest cheap.
vectors = sa.Table(
    "vectors",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("text_hash", sa.String(64), primary_key=True),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("embedding", Embedding, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

sa.Index("ix_documents_status", documents.c.status)
sa.Index("ix_documents_parent", documents.c.parent_id)
sa.Index("ix_chunks_document", chunks.c.document_id)
sa.Index("ix_chunks_text_hash", chunks.c.text_hash)

# SQLite keyword index, created by the migration:
#   CREATE VIRTUAL TABLE chunk_fts USING fts5(text, tokenize='porter unicode61')
# Its rowid is chunks.pk; rows are written in the same transaction as the chunk.
CHUNK_FTS = "chunk_fts"

# --- the job ledger -----------------------------------------------------------

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("queue", sa.String(64), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("not_before", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(200)),
    sa.Column("lease_expires_at", sa.Float),
    sa.Column("progress", sa.Float, nullable=False),
    sa.Column("progress_current", sa.Integer, nullable=False),
    sa.Column("progress_total", sa.Integer, nullable=False),
    sa.Column("progress_message", sa.Text),
    sa.Column("stage", sa.String(32)),
    sa.Column("stages", sa.JSON, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("result", sa.JSON),
    sa.Column("error_type", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("error_traceback", sa.Text),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    sa.Column("idempotency_key", sa.String(200), unique=True),
    sa.Column("document_id", sa.String(32)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Claims take the queued jobs of some queues by priority (highest first), then age:
# the index is in the claim's own order (migration 0004).
sa.Index(
    "ix_jobs_claim",
    jobs.c.status,
    jobs.c.queue,
    jobs.c.priority.desc(),
    jobs.c.created_at,
    jobs.c.id,
)
sa.Index("ix_jobs_lease", jobs.c.status, jobs.c.lease_expires_at)
# A document's jobs of one kind in creation order: the queued twin of a file, the
# latest job (the status rule) and a newer job's outcome (migration 0013).
sa.Index("ix_jobs_document_kind", jobs.c.document_id, jobs.c.kind, jobs.c.created_at)
sa.Index("ix_jobs_finished", jobs.c.finished_at)
# The job lists read newest first, overall and per status; the overview reads a kind's
# latest finished job (migration 0010).
sa.Index("ix_jobs_created", jobs.c.created_at.desc(), jobs.c.id)
sa.Index("ix_jobs_status_created", jobs.c.status, jobs.c.created_at.desc(), jobs.c.id)
sa.Index("ix_jobs_kind_finished", jobs.c.kind, jobs.c.status, jobs.c.finished_at)

staged_files = sa.Table(
    "staged_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(32), nullable=False, index=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("removed_at", sa.Float),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("hostname", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("queues", sa.String(500), nullable=False),
    sa.Column("concurrency", sa.Integer, nullable=False),
    sa.Column("running", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("stopped_at", sa.Float),
)

# --- the API: keys, audit log, conversation memory ------------------------------

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200)),
    sa.Column("source_ip", sa.String(64)),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("target", sa.Text),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("request_id", sa.String(64)),
)

sa.Index("ix_audit_ts", audit_log.c.ts)

conversation_messages = sa.Table(
    "conversation_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
sa.Index("ix_conversation_session", conversation_messages.c.session_id, conversation_messages.c.id)

# --- synced sources: folders and buckets re-listed on a period -------------------

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # A resolved folder path, or s3://bucket/prefix.
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("collection", sa.String(200), nullable=False),
    sa.Column("interval_seconds", sa.Float, nullable=False),
    sa.Column("include", sa.JSON, nullable=False),
    sa.Column("exclude", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # The last sync that ended: its job, outcome, times and report (or error).
    sa.Column("last_sync_job_id", sa.String(32)),
    sa.Column("last_sync_status", sa.String(16)),
    sa.Column("last_sync_started_at", sa.Float),
    sa.Column("last_sync_finished_at", sa.Float),
    sa.Column("last_sync_error", sa.Text),
    sa.Column("last_sync_report", sa.JSON),
    sa.UniqueConstraint("location", "collection", name="uq_sources_location"),
)

# An object of a source as its listing described it (S3: ETag, size, LastModified)
# and the content hash of the bytes read then: listed the same again, the object is
# not read again (migration 0012).
source_objects = sa.Table(
    "source_objects",
    metadata,
    sa.Column(
        "source_id",
        sa.String(32),
        sa.ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("source_uri", sa.Text, primary_key=True),
    sa.Column("listed", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
)
