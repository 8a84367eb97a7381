"""Indexes in the order the job lists read: newest first, overall and per status,
and a kind's latest finished job.

With 100,000 jobs on SQLite, the jobs list (newest 200) sorted every row in a
temporary b-tree; a status filter sorted every job of that status; the overview's
"latest integrity check" walked the finish-time index back through every job when
none of that kind had succeeded. Each is now a short index range. See
docs/benchmarks.md (console pages at 100k jobs).

Revision ID: 0010
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
# Other branches add 0006-0009; whichever lands last points this at its predecessor.
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_created", "jobs", [sa.text("created_at DESC"), "id"])
    op.create_index("ix_jobs_status_created", "jobs", ["status", sa.text("created_at DESC"), "id"])
    op.create_index("ix_jobs_kind_finished", "jobs", ["kind", "status", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_kind_finished", table_name="jobs")
    op.drop_index("ix_jobs_status_created", table_name="jobs")
    op.drop_index("ix_jobs_created", table_name="jobs")
