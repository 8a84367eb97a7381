"""Synced sources: folders and buckets re-listed on a period.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("collection", sa.String(200), nullable=False),
        sa.Column("interval_seconds", sa.Float, nullable=False),
        sa.Column("include", sa.JSON, nullable=False),
        sa.Column("exclude", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_sync_job_id", sa.String(32)),
        sa.Column("last_sync_status", sa.String(16)),
        sa.Column("last_sync_started_at", sa.Float),
        sa.Column("last_sync_finished_at", sa.Float),
        sa.Column("last_sync_error", sa.Text),
        sa.Column("last_sync_report", sa.JSON),
        sa.UniqueConstraint("location", "collection", name="uq_sources_location"),
    )


def downgrade() -> None:
    op.drop_table("sources")
