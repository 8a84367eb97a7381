"""A document's jobs of one kind, in creation order, from one index.

Three statements on the hot path ask for the jobs of one document and kind: whether
a queued twin of a file exists (`ingest add`, every file), the latest job (the status
rule, every enqueue and outcome) and a newer job's outcome (every ingest commit).
With only `ix_jobs_document (document_id)`, SQLite chose `ix_jobs_status_created`
for the queued twin and walked every queued job, newest first: submitting N files
cost O(N^2) (a 5,000-file `ingest add` scanned ~12.5 million index entries), and any
upload behind a backlog of 10,000 queued jobs scanned all of them. The latest-job
read sorted in a temporary b-tree. This index answers all three with one short
range, and still serves every lookup by document alone.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_document_kind", "jobs", ["document_id", "kind", "created_at"])
    op.drop_index("ix_jobs_document", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_document", "jobs", ["document_id"])
    op.drop_index("ix_jobs_document_kind", table_name="jobs")
