"""Indexes in the order the job lists read: newest first, overall and per status,
and a kind's latest finished job. On SQLite also a counter of the writes that change
what vector search reads, for the in-process vector cache.

With 100,000 jobs on SQLite, the jobs list (newest 200) sorted every row in a
temporary b-tree; a status filter sorted every job of that status; the overview's
"latest integrity check" walked the finish-time index back through every job when
none of that kind had succeeded. Each is now a short index range. See
docs/benchmarks.md (console pages at 100k jobs).

The vector cache (store/vector_cache.py) reloaded, or fell back to the exact SQL scan,
whenever `PRAGMA data_version` moved, that is after ANY commit: a worker's heartbeat
every 2 s made most searches beside a running worker exact scans (2-6 s at 100k
chunks on a busy machine, instead of ~50 ms). `search_generation.n` moves only when
a row the vector search reads changes (triggers, in the writing transaction).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
# Other branches add 0006-0009; whichever lands last points this at its predecessor.
down_revision = "0009"
branch_labels = None
depends_on = None


# (table, trigger event) pairs whose writes change the rows vector search reads.
_WATCHED = [
    ("chunks", "INSERT"),
    ("chunks", "DELETE"),
    ("chunks", "UPDATE"),
    ("vectors", "INSERT"),
    ("vectors", "DELETE"),
    ("vectors", "UPDATE"),
    ("documents", "DELETE"),
    ("documents", "UPDATE OF id, collection_id"),
    ("collections", "DELETE"),
]


def _trigger_name(table: str, event: str) -> str:
    return f"tr_search_generation_{table}_{event.split()[0].lower()}"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TABLE search_generation (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "n INTEGER NOT NULL)"
        )
        op.execute("INSERT INTO search_generation (id, n) VALUES (1, 0)")
        for table, event in _WATCHED:
            op.execute(
                f"CREATE TRIGGER {_trigger_name(table, event)} AFTER {event} ON {table} "
                "BEGIN UPDATE search_generation SET n = n + 1 WHERE id = 1; END"
            )
    op.create_index("ix_jobs_created", "jobs", [sa.text("created_at DESC"), "id"])
    op.create_index("ix_jobs_status_created", "jobs", ["status", sa.text("created_at DESC"), "id"])
    op.create_index("ix_jobs_kind_finished", "jobs", ["kind", "status", "finished_at"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, event in _WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS {_trigger_name(table, event)}")
        op.execute("DROP TABLE IF EXISTS search_generation")
    op.drop_index("ix_jobs_kind_finished", table_name="jobs")
    op.drop_index("ix_jobs_status_created", table_name="jobs")
    op.drop_index("ix_jobs_created", table_name="jobs")
