"""Schema migrations on both backends: from empty to head, idempotent, and the
refusal to run on an out-of-date schema."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ingest.context import Context
from ingest.errors import SchemaOutOfDate
from ingest.settings import Settings
from ingest.store import Store
from ingest.store.migrate import head_revision
from tests.support.postgres import PostgresServer


def test_migrate_is_idempotent(database_url: str) -> None:
    store = Store.open(database_url)
    try:
        store.migrate()
        before, after = store.migrate()
        assert before == after == head_revision()
        assert store.schema_is_current()
    finally:
        store.close()


def test_concurrent_migrations_do_not_race(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    errors: list[BaseException] = []

    def migrate() -> None:
        store = Store.open(url)
        try:
            store.migrate()
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    store = Store.open(url)
    assert store.schema_is_current()
    store.close()


def test_postgres_services_refuse_an_unmigrated_schema(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    with pytest.raises(SchemaOutOfDate, match="ingest migrate"):
        Context(Settings(database_url=url, incoming_dir=tmp_path / "in"))


def test_sqlite_without_auto_migrate_refuses_too(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", auto_migrate=False)
    with pytest.raises(SchemaOutOfDate, match="ingest migrate"):
        Context(settings)


def test_the_head_read_from_the_version_files_is_alembics(tmp_path: Path) -> None:
    """The start-up check reads the head without Alembic: it must be Alembic's."""
    from alembic.script import ScriptDirectory

    from ingest.store import migrate

    alembic_head = ScriptDirectory.from_config(migrate._alembic_config()).get_current_head()
    assert migrate._head_from_files() == alembic_head
    store = Store.open(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert migrate.current_revision(store.engine) is None
        assert store.schema_is_current() is False
        store.migrate()
        assert migrate.current_revision(store.engine) == alembic_head
        assert store.schema_is_current() is True
    finally:
        store.close()
