"""Engines for SQLite (embedded) and PostgreSQL (scale-out).

SQLite notes: CPython's sqlite3 here cannot load extensions, so we hand
SQLAlchemy the `sqlean` module (same DB-API, extension loading enabled) and
load sqlite-vec on every new connection. WAL lets readers run beside the one
writer; writes open with BEGIN IMMEDIATE so two writers queue on the lock
instead of failing half-way with SQLITE_BUSY on upgrade.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from ingest.errors import ConfigError


def create_db_engine(
    database_url: str,
    *,
    busy_timeout_ms: int = 60_000,
    pool_size: int = 5,
    max_overflow: int = 10,
    prepared_statements: bool = True,
    setting: str = "DATABASE_URL",
) -> Engine:
    """`prepared_statements=False`: psycopg never prepares a statement on the server,
    which a pooler in transaction mode (PgBouncer before 1.21) needs: the next
    transaction may run on another server connection, where it does not exist.
    `setting` names the variable the URL came from, for error messages."""
    url = _parse_url(database_url, setting)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_ms)
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
        connect_args: dict[str, Any] = {}
        if not prepared_statements:
            connect_args["prepare_threshold"] = None
        return sa.create_engine(
            url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_args=connect_args,
        )
    raise ConfigError(
        f"unsupported {setting} scheme '{url.drivername}': use sqlite:///PATH "
        "or postgresql+psycopg://USER@HOST/DB"
    )


def _parse_url(database_url: str, setting: str = "DATABASE_URL") -> sa.URL:
    try:
        return make_url(database_url)
    except ArgumentError:
        raise ConfigError(
            f"{setting}={database_url!r} is not a database URL: use "
            "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        ) from None


def sqlite_file_of(database_url: str) -> Path | None:
    """The absolute path of the SQLite file a URL names (None: not a SQLite file)."""
    url = _parse_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).expanduser().resolve()


def describe_database(database_url: str) -> str:
    """A SQLite file's absolute path, or the URL without its password."""
    path = sqlite_file_of(database_url)
    if path is not None:
        return str(path)
    return _parse_url(database_url).render_as_string(hide_password=True)


def _sqlite_engine(url: sa.URL, busy_timeout_ms: int) -> Engine:
    import sqlean  # the sqlite3 drop-in that can load extensions

    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        module=sqlean,
        # The connection used last comes back first: SQLite drops a connection's
        # page cache when another connection wrote since its last transaction, so
        # a thread's run of transactions (claim, reads, commit) keeps its cache warm
        # on one connection instead of re-reading pages on each of the pool's.
        pool_use_lifo=True,
        connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver: we emit BEGIN ourselves.
        dbapi_conn.isolation_level = None
        _load_sqlite_vec(dbapi_conn)
        cursor = dbapi_conn.cursor()
        _enter_wal_mode(cursor, busy_timeout_ms)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        # Straight to the driver: through exec_driver_sql, SQLAlchemy's statement
        # machinery cost more than SQLite's BEGIN itself, three times a document.
        conn.connection.driver_connection.execute(_BEGIN[mode])  # type: ignore[union-attr]

    return engine


_BEGIN = {mode: f"BEGIN {mode}" for mode in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")}


def _enter_wal_mode(cursor: Any, busy_timeout_ms: int) -> None:
    """Switch the file to WAL, waiting out a writer on a new store.

    On a file still in rollback-journal mode, SQLite answers the switch with
    "database is locked" at once, without calling the busy handler, while another
    connection holds a write lock: waiting could deadlock. Two processes opening a
    new store at the same moment meet exactly that (one is switching or migrating
    while the other connects), so the switch is retried until the busy timeout.
    WAL is a property of the file: once one connection has switched, the others'
    switch is a no-op that takes no write lock."""
    import sqlean

    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlean.OperationalError as exc:
        if not _is_locked(exc):
            raise
        _retry_wal_switch(cursor, busy_timeout_ms)


def _is_locked(exc: BaseException) -> bool:
    import sqlean

    return isinstance(exc, sqlean.OperationalError) and "locked" in str(exc)


def _retry_wal_switch(cursor: Any, busy_timeout_ms: int) -> None:
    # tenacity is imported here, not at the top: the switch almost never needs a
    # second try, and every CLI command opens the store.
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

    for attempt in Retrying(
        stop=stop_after_delay(busy_timeout_ms / 1000),
        wait=wait_random_exponential(multiplier=0.005, max=0.1),
        retry=retry_if_exception(_is_locked),
        reraise=True,
    ):
        with attempt:
            cursor.execute("PRAGMA journal_mode=WAL")


def _load_sqlite_vec(dbapi_conn: Any) -> None:
    import sqlite_vec

    dbapi_conn.enable_load_extension(True)
    try:
        sqlite_vec.load(dbapi_conn)
    finally:
        dbapi_conn.enable_load_extension(False)


_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _process_write_lock(engine: Engine) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(engine)
        if lock is None:
            lock = _WRITE_LOCKS[engine] = threading.Lock()
        return lock


@contextmanager
def write_transaction(engine: Engine) -> Iterator[sa.Connection]:
    """A write transaction. On SQLite it takes the database write lock up front
    (BEGIN IMMEDIATE), and threads of this process queue on a mutex first: SQLite's
    own busy handler waits by sleeping (1, 2, 5 ... 100 ms), which throttles a busy
    process far more than handing a lock from thread to thread."""
    if engine.dialect.name != "sqlite":
        with engine.connect() as conn, conn.begin():
            yield conn
        return
    with (
        _process_write_lock(engine),
        engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn,
        conn.begin(),
    ):
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[sa.Connection]:
    """A read transaction: one consistent snapshot for the statements inside it."""
    with engine.connect() as conn, conn.begin():
        yield conn


def sqlite_backup(engine: Engine, target: Path) -> int:
    """A consistent copy of a live SQLite database at `target`, with SQLite's online
    backup API in one step: one read snapshot, so writers in other processes go on
    (WAL) and what they commit meanwhile is simply not in the copy. Written beside
    `target` and renamed, so a failed run leaves no half-copied file behind.
    Returns the copy's size in bytes."""
    import sqlean

    target = target.expanduser().resolve()
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    raw = engine.raw_connection()
    try:
        copy = sqlean.connect(str(partial))
        try:
            raw.driver_connection.backup(copy)  # type: ignore[union-attr]
            # A self-contained file: no -wal beside it to copy along.
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        raw.close()
    partial.replace(target)
    return target.stat().st_size
