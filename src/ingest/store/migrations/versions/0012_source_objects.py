"""Synced sources remember each object as listed (S3: its ETag, size and
LastModified) with the content hash its bytes had: a sync skips the download of an
object listed the same as before. Objects synced before have no row: hashed once at
their next sync, then remembered.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_objects",
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


def downgrade() -> None:
    op.drop_table("source_objects")
