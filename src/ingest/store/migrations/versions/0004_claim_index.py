"""The claim index in the claim's own order.

Claims take the queued jobs of some queues by priority (highest first), then age.
The first index ran priority ascending, so every claim sorted all queued jobs of
its queues in a temporary b-tree: 1.7 ms a claim with 5,000 queued on SQLite,
against 0.005 ms when the index is in the claim's order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.create_index(
        "ix_jobs_claim",
        "jobs",
        ["status", "queue", sa.text("priority DESC"), "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.create_index("ix_jobs_claim", "jobs", ["status", "queue", "priority", "created_at"])
