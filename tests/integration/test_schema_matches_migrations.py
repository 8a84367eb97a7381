"""The tables the queries in store/ are written against (store/schema.py) are the
tables the migrations build, on both backends; and an older database upgrades
with its data."""

from __future__ import annotations

import calendar
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ingest.store import Store
from ingest.store.migrate import _alembic_config
from ingest.store.schema import metadata

# Objects only the migrations know on purpose, each with its reason.
_MIGRATION_ONLY = {
    # SQLite: FTS5 keyword index (a virtual table and its shadow tables).
    "chunk_fts",
    "chunk_fts_config",
    "chunk_fts_content",
    "chunk_fts_data",
    "chunk_fts_docsize",
    "chunk_fts_idx",
    # SQLite: the counter the vector cache watches, bumped by triggers (migration 0010).
    "search_generation",
    # PostgreSQL: generated tsvector column and the indexes over it and the vectors.
    "tsv",
    "ix_chunks_tsv",
    "ix_vectors_hnsw_384",  # one per vector width, made by the migration
    # PostgreSQL: BM25's statistics (store/bm25.py), written and read in SQL only.
    "keyword_length",
    "keyword_lexemes",
}


def _names(diff: Any) -> set[str]:
    """Every name a diff entry mentions: table, column or index."""
    found: set[str] = set()
    stack = [diff]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(item)
        elif isinstance(item, (sa.Table, sa.Index, sa.Column)):
            found.add(str(item.name))
        elif isinstance(item, str):
            found.add(item)
    return found


def _unexplained(diffs: list[Any]) -> list[Any]:
    return [d for d in diffs if not (_names(d) & _MIGRATION_ONLY)]


def test_metadata_equals_the_migrated_schema(database_url: str) -> None:
    store = Store.open(database_url)
    try:
        store.migrate()
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, metadata)
    finally:
        store.close()
    assert _unexplained(diffs) == []


def test_the_comparison_sees_a_missing_column(database_url: str) -> None:
    store = Store.open(database_url)
    try:
        store.migrate()
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE workers DROP COLUMN stopped_at")
        with store.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        store.close()
    assert any("stopped_at" in _names(d) for d in _unexplained(diffs))


def test_a_0004_database_upgrades_and_keeps_its_data(tmp_path: Path) -> None:
    """Times become epoch seconds (0005) without losing a row or a moment."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store.open(url)
    config = _alembic_config()
    try:
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0004")
            conn.exec_driver_sql(
                "INSERT INTO collections (id, name, created_at) "
                "VALUES (1, 'default', '2026-11-20 10:00:00.250000')"
            )
            conn.exec_driver_sql(
                "INSERT INTO documents (id, collection_id, source_uri, status, metadata, "
                "chunk_count, created_at, updated_at) VALUES ('d1', 1, '/a.txt', 'ready', "
                "'{\"team\": \"x\"}', 1, '2026-11-20 10:00:00.250000', '2026-11-21 11:30:00')"
            )
            conn.exec_driver_sql(
                "INSERT INTO chunks (id, document_id, ordinal, text, text_hash, token_count) "
                "VALUES ('c1', 'd1', 0, 'kept text', 'h1', 2)"
            )
            conn.exec_driver_sql(
                "INSERT INTO vectors (model, text_hash, dim, embedding, created_at) "
                "VALUES ('m', 'h1', 1, x'0000803f', '2026-11-20 10:00:01')"
            )
        store.migrate()
        doc = store.get_document("d1")
        assert doc is not None
        # The old columns held UTC wall-clock strings.
        expected = calendar.timegm(time.strptime("2026-11-20 10:00:00", "%Y-%m-%d %H:%M:%S"))
        assert doc.created_at == pytest.approx(expected + 0.25, abs=0.01)
        assert doc.updated_at - doc.created_at == pytest.approx(91799.75, abs=0.01)
        assert doc.metadata == {"team": "x"}
        assert [c.text for c in store.chunks_of("d1")] == ["kept text"]
        assert store.cached_vectors("m", ["h1"]) == {"h1": b"\x00\x00\x80\x3f"}
    finally:
        store.close()


def test_every_migration_steps_down_and_up_again(database_url: str) -> None:
    """Each downgrade runs (an operator rolling back a release runs them), one step at a
    time down to an empty database; upgrading again gives the same schema."""
    store = Store.open(database_url)
    config = _alembic_config()
    try:
        store.migrate()
        steps = 0
        while True:
            with store.engine.begin() as conn:
                revision = MigrationContext.configure(conn).get_current_revision()
                if revision is None:
                    break
                config.attributes["connection"] = conn
                command.downgrade(config, "-1")
            steps += 1
        assert steps >= 10
        with store.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
        assert tables == set(), f"left behind after the last downgrade: {sorted(tables)}"
        store.migrate()
        with store.engine.connect() as conn:
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
    finally:
        store.close()
    assert _unexplained(diffs) == []
