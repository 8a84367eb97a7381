"""The job ledger, staged files, the worker registry.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    t = sa.Float  # epoch seconds: comparable and portable on SQLite and PostgreSQL
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("not_before", t, nullable=False),
        sa.Column("lease_owner", sa.String(200)),
        sa.Column("lease_expires_at", t),
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
        sa.Column("created_at", t, nullable=False),
        sa.Column("started_at", t),
        sa.Column("finished_at", t),
        sa.Column("updated_at", t, nullable=False),
    )
    op.create_index("ix_jobs_claim", "jobs", ["status", "queue", "priority", "created_at"])
    op.create_index("ix_jobs_lease", "jobs", ["status", "lease_expires_at"])
    op.create_index("ix_jobs_document", "jobs", ["document_id"])
    op.create_index("ix_jobs_finished", "jobs", ["finished_at"])
    op.create_table(
        "staged_files",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), nullable=False, index=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", t, nullable=False),
        sa.Column("removed_at", t),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("hostname", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("queues", sa.String(500), nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("running", sa.Integer, nullable=False),
        sa.Column("started_at", t, nullable=False),
        sa.Column("heartbeat_at", t, nullable=False),
        sa.Column("stopped_at", t),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("staged_files")
    op.drop_table("jobs")
