"""Chunks say whether OCR read their text (`ocr`): a scanned PDF page, an image, an
Office picture. Chunks stored before say false until their document is re-parsed
(PARSER_VERSION 4 re-parses every stored document anyway).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: SQLite adds the column without rewriting the table, and
    # PostgreSQL 11+ without rewriting it either.
    op.add_column("chunks", sa.Column("ocr", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy would drop the chunks triggers.
    op.execute("ALTER TABLE chunks DROP COLUMN ocr")
