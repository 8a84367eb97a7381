"""Schema migrations: run them (`ingest migrate`) and check the schema is current.

Checking costs no Alembic import (~0.2 CPU s with Mako, for every `ingest` command
that opens the store): the head is read from the version files' `revision` /
`down_revision` lines and the store's revision with one query. Alembic itself is
imported only to migrate, or to answer when the files are not a simple chain.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.errors import SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION_LINE = re.compile(
    r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.*?)\s*(?:#.*)?$", re.MULTILINE
)
_QUOTED = re.compile(r"""^(?:"([^"]*)"|'([^']*)')$""")


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


@cache
def head_revision() -> str:
    head = _head_from_files()
    if head is None:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def _head_from_files() -> str | None:
    """The one revision no other follows, if every version file names its revision
    and its single parent as plain strings (else None: Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        if path.name == "__init__.py":
            continue
        text = path.read_text("utf-8")
        found: dict[str, str] = {m[1]: m[2] for m in _REVISION_LINE.finditer(text)}
        revision = _QUOTED.match(found.get("revision", ""))
        down = found.get("down_revision")
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1) or revision.group(2))
        if down != "None":
            parent = _QUOTED.match(down)
            if parent is None:  # a merge (a tuple) or anything else: not simple
                return None
            parents.add(parent.group(1) or parent.group(2))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: Engine) -> str | None:
    """The store's revision: the one row of Alembic's version table (None before
    the first migration)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        if len(rows) > 1:  # several heads: Alembic's own answer (it raises)
            from alembic.runtime.migration import MigrationContext

            return MigrationContext.configure(conn).get_current_revision()
        return str(rows[0]) if rows else None


def upgrade_to_head(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    config = _alembic_config()
    # IMMEDIATE on SQLite: two processes migrating at once queue instead of racing.
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn:
        if conn.dialect.name == "postgresql":
            # Serialise concurrent `ingest migrate` runs; the lock ends with the transaction.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727170)")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()
    return before, head_revision()


def require_current_schema(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"the database schema is at revision {current or 'none'} but this version of "
            f"ingest needs {head}: run `ingest migrate`"
        )
