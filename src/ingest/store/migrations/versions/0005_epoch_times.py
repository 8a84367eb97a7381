"""One representation of time: epoch seconds (float) in every table.

The ledger, keys, audit log and conversations already stored epoch seconds;
collections, documents and vectors stored timestamps. Those three are converted
in place, keeping every row.

SQLite: add a float column, fill it, drop the old one, rename. Native ALTER TABLE
on purpose: Alembic's batch mode would recreate `documents`, and with foreign keys
on, dropping the old table would cascade into `chunks`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("collections", "created_at"),
    ("documents", "created_at"),
    ("documents", "updated_at"),
    ("vectors", "created_at"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in _COLUMNS:
            op.execute(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE double precision "
                f"USING extract(epoch FROM {column})"
            )
        return
    for table, column in _COLUMNS:
        # SQLite keeps these as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC; julianday reads them.
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column}_s FLOAT NOT NULL DEFAULT 0")
        op.execute(f"UPDATE {table} SET {column}_s = (julianday({column}) - 2440587.5) * 86400.0")
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        op.execute(f"ALTER TABLE {table} RENAME COLUMN {column}_s TO {column}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in _COLUMNS:
            op.execute(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE timestamp with time zone "
                f"USING to_timestamp({column})"
            )
        return
    for table, column in _COLUMNS:
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column}_t DATETIME NOT NULL DEFAULT ''")
        op.execute(
            f"UPDATE {table} SET {column}_t = strftime('%Y-%m-%d %H:%M:%f', {column}, 'unixepoch')"
        )
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        op.execute(f"ALTER TABLE {table} RENAME COLUMN {column}_t TO {column}")
