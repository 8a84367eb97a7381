"""Child documents: a member of an archive or an e-mail's attachment points at the
document that holds it (`documents.parent_id`), so it is listed, replaced and
deleted with it.

No foreign key on purpose: deleting a document deletes its descendants in the
store's own transaction (store/documents.py), which also removes their keyword
rows; a cascade would bypass SQLite's FTS table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("parent_id", sa.String(32), nullable=True))
    op.create_index("ix_documents_parent", "documents", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_documents_parent", table_name="documents")
    op.drop_column("documents", "parent_id")
