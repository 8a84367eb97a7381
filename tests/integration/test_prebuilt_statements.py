"""Statements built once run through SQLite's driver (store/prebuilt.py): what they
write and read must be exactly what SQLAlchemy's own execute writes and reads, typed
values included. On both backends (PostgreSQL runs them through SQLAlchemy)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.store.engine import create_db_engine, read_transaction, write_transaction
from ingest.store.prebuilt import run, run_many

metadata = sa.MetaData()
items = sa.Table(
    "prebuilt_items",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    # A column whose key is not its name: rows are keyed as SQLAlchemy keys them.
    sa.Column("metadata", sa.JSON, key="meta"),
    sa.Column("flag", sa.Boolean, nullable=False),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("score", sa.Float),
)

INSERT = items.insert()
BY_IDS = sa.select(items, sa.literal_column("'x'").label("tag")).where(
    items.c.id.in_(sa.bindparam("ids", expanding=True))
)
# A value held by the statement itself, one given per run, and RETURNING.
MARK = (
    items.update()
    .where(items.c.id == sa.bindparam("item_id"))
    .values(state="marked", meta=sa.bindparam("new_meta", type_=sa.JSON))
    .returning(items.c.id, items.c.meta, items.c.flag)
)
ROWS: list[dict[str, Any]] = [
    {"id": "a", "meta": {"k": [1, 2], "s": "é"}, "flag": True, "state": "new", "score": 0.5},
    {"id": "b", "meta": None, "flag": False, "state": "new", "score": None},
    {"id": "c", "meta": {"n": 3}, "flag": False, "state": "new", "score": 2.0},
]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def read_back(engine: Engine) -> list[dict[str, Any]]:
    """What SQLAlchemy's own execute reads."""
    with read_transaction(engine) as conn:
        rows = conn.execute(sa.select(items).order_by(items.c.id)).all()
    return [as_written(row) for row in rows]


def as_written(row: Any) -> dict[str, Any]:
    """A row by the columns' keys (`meta`, where the column's name is `metadata`)."""
    return {c.key: row._mapping[c.key] for c in items.c}


def test_rows_inserted_by_run_many_read_back_as_written(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        run_many(conn, INSERT, ROWS)
    assert read_back(engine) == ROWS


def test_a_select_with_an_in_list_returns_typed_rows_for_any_list_length(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        conn.execute(INSERT, ROWS)
    with read_transaction(engine) as conn:
        one = run(conn, BY_IDS, {"ids": ["a"]}).all()
        two = sorted(run(conn, BY_IDS, {"ids": ["c", "b", "zz"]}), key=lambda r: r.id)
    assert [as_written(r) for r in one] == ROWS[:1]
    assert one[0].tag == "x"
    assert one[0]._mapping["metadata"] == ROWS[0]["meta"]
    assert [(r.id, r.meta, r.flag, r.score, r.tag) for r in two] == [
        ("b", None, False, None, "x"),
        ("c", {"n": 3}, False, 2.0, "x"),
    ]


def test_an_update_returning_sets_the_statement_s_own_values(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        conn.execute(INSERT, ROWS)
    with write_transaction(engine) as conn:
        marked = run(conn, MARK, {"item_id": "b", "new_meta": {"by": "test"}})
        returned = marked.all()
        missing = run(conn, MARK, {"item_id": "nope", "new_meta": {}})
        assert missing.first() is None
        with pytest.raises(sa.exc.NoResultFound):
            run(conn, MARK, {"item_id": "nope", "new_meta": {}}).one()
        assert run(conn, MARK, {"item_id": "c", "new_meta": None}).one().id == "c"
    assert [(r.id, r.meta, r.flag) for r in returned] == [("b", {"by": "test"}, False)]
    after = {row["id"]: row for row in read_back(engine)}
    assert after["b"]["state"] == "marked"
    assert after["b"]["meta"] == {"by": "test"}
    assert after["a"] == ROWS[0]
    assert after["c"]["meta"] is None


class Abort(Exception):
    pass


def insert_then_abort(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        run_many(conn, INSERT, ROWS[:1])
        raise Abort


def test_run_writes_inside_the_caller_s_transaction(engine: Engine) -> None:
    with pytest.raises(Abort):
        insert_then_abort(engine)
    assert read_back(engine) == []


def test_a_missing_parameter_is_an_error_not_a_null(engine: Engine) -> None:
    with write_transaction(engine) as conn, pytest.raises((KeyError, sa.exc.StatementError)):
        run(conn, MARK, {"new_meta": {}})


def insert_first_row(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        run_many(conn, INSERT, ROWS[:1])


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(engine: Engine) -> None:
    insert_first_row(engine)
    with pytest.raises(sa.exc.IntegrityError):
        insert_first_row(engine)
    assert read_back(engine) == ROWS[:1]
