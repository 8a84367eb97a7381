"""Schema migrations: run them (`ingest migrate`) and check the schema is current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from ingest.errors import SchemaOutOfDate

_MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after)."""
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
