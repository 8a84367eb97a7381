"""Opening a SQLite store while another process writes to it."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlean

from ingest.store.engine import create_db_engine


def test_a_new_store_opens_while_another_connection_holds_its_write_lock(
    tmp_path: Path,
) -> None:
    # Two processes starting on a new store: one holds the write lock of a file
    # still in rollback-journal mode while the other connects and switches it to
    # WAL. SQLite refuses that switch at once, without waiting; the second
    # process must wait for the lock instead of failing.
    path = tmp_path / "ingest.db"
    writer = sqlean.connect(str(path), isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")

    engine = create_db_engine(f"sqlite:///{path}", busy_timeout_ms=120_000)
    modes: list[str] = []
    errors: list[BaseException] = []

    def connect() -> None:
        try:
            with engine.connect() as conn:
                modes.append(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one())
        except BaseException as exc:
            errors.append(exc)

    opener = threading.Thread(target=connect)
    opener.start()
    opener.join(timeout=1.0)  # long enough for a refusal to surface
    assert errors == [], f"the open failed while the writer held its lock: {errors[0]!r}"
    assert opener.is_alive(), "the open returned while the writer still held its lock"

    writer.execute("COMMIT")
    opener.join(timeout=60)
    assert not opener.is_alive()
    assert errors == []
    assert modes == ["wal"]
    engine.dispose()
    writer.close()
