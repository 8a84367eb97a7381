"""Statements built once, run on SQLite straight through its driver.

SQLAlchemy's `Connection.execute` of a statement built once still hashes its cache
key, looks its compiled form up, makes an execution context and wraps every row:
measured with the model sharing the CPU (which leaves every cache cold), ~0.1 ms of
CPU a statement beyond SQLite's own, and a document's ingestion runs a dozen. On
SQLite the statements of that path run here instead: compiled by SQLAlchemy once (the
same SQL it would send), their parameters and rows converted by the columns' own type
processors, on the DB-API connection under `conn`, so inside its transaction. On
PostgreSQL, where a statement costs a round trip anyway, `conn.execute` runs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

Params = Mapping[str, Any]
_Processor = Callable[[Any], Any] | None


class Row:
    """A result row: by attribute (`row.id`) or through `row._mapping`, as
    SQLAlchemy's Row."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


class Rows(Protocol):
    """What callers use of a result: SQLAlchemy's CursorResult has it too."""

    @property
    def rowcount(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...

    def first(self) -> Any: ...

    def one(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...


@dataclass(slots=True)
class _Result:
    rows: list[Row]
    rowcount: int

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def first(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def one(self) -> Row:
        if len(self.rows) != 1:
            error = sa.exc.NoResultFound if not self.rows else sa.exc.MultipleResultsFound
            raise error(f"expected one row, got {len(self.rows)}")
        return self.rows[0]

    def all(self) -> list[Row]:
        return self.rows


_POSTCOMPILE = re.compile(r"__\[POSTCOMPILE_(\w+)\]")


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One statement in SQLite's SQL, with what turns a call's parameters into the
    driver's and its rows back into typed values."""

    sql: str
    names: tuple[str, ...]  # the parameters, in the order of the SQL's `?`
    defaults: dict[str, Any]  # values the statement itself holds (`status='running'`)
    bind: dict[str, _Processor]
    expanding: frozenset[str]  # `IN` lists: a `?` per value
    keys: tuple[tuple[str, ...], ...]  # each result column's names in a row
    result: tuple[_Processor, ...]

    @classmethod
    def of(cls, stmt: sa.Executable, dialect: Dialect, keys: Sequence[str]) -> _Compiled:
        # As conn.execute compiles it: an INSERT or UPDATE sets the columns given.
        compiled = cast(
            SQLCompiler,
            cast(sa.ClauseElement, stmt).compile(dialect=dialect, column_keys=list(keys)),
        )
        names = tuple(compiled.positiontup or ())
        binds = {name: compiled.binds[name] for name in dict.fromkeys(names)}
        columns = _result_columns(stmt)
        return cls(
            sql=compiled.string,
            names=names,
            defaults={n: b.value for n, b in binds.items() if not b.required},
            bind={n: _impl(b.type, dialect).bind_processor(dialect) for n, b in binds.items()},
            expanding=frozenset(n for n, b in binds.items() if b.expanding),
            keys=tuple(_row_keys(c) for c in columns),
            result=tuple(_impl(c.type, dialect).result_processor(dialect, None) for c in columns),
        )

    def driver_sql(self, params: Params) -> str:
        if not self.expanding:
            return self.sql
        return _POSTCOMPILE.sub(lambda m: ", ".join("?" * len(params[m.group(1)])), self.sql)

    def driver_params(self, params: Params) -> list[Any]:
        values: list[Any] = []
        for name in self.names:
            value = params[name] if name in params else self.defaults[name]
            process = self.bind[name]
            if name in self.expanding:
                values.extend(process(v) for v in value) if process else values.extend(value)
            else:
                values.append(process(value) if process else value)
        return values

    def to_row(self, raw: Sequence[Any]) -> Row:
        mapping: dict[str, Any] = {}
        for keys, process, value in zip(self.keys, self.result, raw, strict=True):
            typed = process(value) if process else value
            for key in keys:
                mapping[key] = typed
        return Row(mapping)


def _impl(type_: sa.types.TypeEngine[Any], dialect: Dialect) -> sa.types.TypeEngine[Any]:
    """The type as `dialect` runs it (SQLite's JSON, say), with its processors."""
    return type_.dialect_impl(dialect)


def _row_keys(column: sa.ColumnElement[Any]) -> tuple[str, ...]:
    """What a row answers to for `column`, as SQLAlchemy's does: its name, and its key
    when that differs (`documents.c.meta` is the column `metadata`)."""
    names = (getattr(column, "name", None), getattr(column, "key", None))
    return tuple(dict.fromkeys(str(n) for n in names if n is not None))


def _result_columns(stmt: sa.Executable) -> Sequence[sa.ColumnElement[Any]]:
    """The columns of the rows `stmt` returns (RETURNING's, for an UPDATE)."""
    if isinstance(stmt, sa.Select):
        return list(stmt.selected_columns)
    if isinstance(stmt, sa.UpdateBase):
        return list(stmt.exported_columns)
    return []


# By the statement itself (hashed by identity: the statements are built once and live
# as long as the process) and the parameters' names.
_COMPILED: dict[tuple[sa.Executable, str, tuple[str, ...]], _Compiled] = {}


def _compiled(stmt: sa.Executable, dialect: Dialect, params: Params) -> _Compiled:
    key = (stmt, dialect.name, tuple(params))
    found = _COMPILED.get(key)
    if found is None:
        # Two threads may compile the same statement at once: both get the same.
        found = _COMPILED[key] = _Compiled.of(stmt, dialect, key[2])
    return found


def run(conn: sa.Connection, stmt: sa.Executable, params: Params) -> Rows:
    """Execute `stmt`, one of the module-level statements built once, with `params`."""
    if conn.dialect.name != "sqlite":
        return cast(Rows, conn.execute(stmt, dict(params)))
    compiled = _compiled(stmt, conn.dialect, params)
    sql, values = compiled.driver_sql(params), compiled.driver_params(params)
    try:
        cursor = _driver(conn).execute(sql, values)
        rows = [compiled.to_row(raw) for raw in cursor.fetchall()] if compiled.keys else []
    except _driver_error(conn) as exc:
        raise _as_sqlalchemy_error(conn, sql, values, exc) from exc
    return _Result(rows, cursor.rowcount)


def run_many(conn: sa.Connection, stmt: sa.Executable, params: Sequence[Params]) -> None:
    """Execute `stmt` once per parameter set (an INSERT of many rows)."""
    if not params:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(stmt, [dict(p) for p in params])
        return
    compiled = _compiled(stmt, conn.dialect, params[0])
    values = [compiled.driver_params(p) for p in params]
    try:
        _driver(conn).executemany(compiled.sql, values)
    except _driver_error(conn) as exc:
        raise _as_sqlalchemy_error(conn, compiled.sql, values, exc) from exc


def _driver_error(conn: sa.Connection) -> type[Exception]:
    return cast(type[Exception], conn.dialect.loaded_dbapi.Error)


def _as_sqlalchemy_error(
    conn: sa.Connection, sql: str, values: Any, error: Exception
) -> sa.exc.StatementError:
    """The driver's error as SQLAlchemy raises it (sa.exc.IntegrityError, ...), so
    callers catch the same exceptions whichever way a statement ran."""
    return sa.exc.DBAPIError.instance(sql, values, error, _driver_error(conn))


def _driver(conn: sa.Connection) -> Any:
    # The DB-API connection SQLAlchemy holds for `conn`: its transaction is conn's.
    return conn.connection.driver_connection
