"""`ingest backup PATH`: a copy a user can run the CLI on; clear refusals otherwise."""

from __future__ import annotations

from pathlib import Path

from ingest.store import Store
from tests.acceptance.test_cli import run, run_json


def test_backup_copies_a_sqlite_database_and_refuses_what_it_cannot_do(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    source = cli_env["DATABASE_URL"].removeprefix("sqlite:///")
    store = Store.open(cli_env["DATABASE_URL"])
    store.migrate()
    store.close()
    target = tmp_path / "backups" / "copy.db"
    target.parent.mkdir()

    report = run_json(cli_env, "backup", str(target))
    assert report == {"database": source, "backup": str(target), "bytes": target.stat().st_size}
    assert not Path(f"{target}-wal").exists()  # one self-contained file
    copy = Store.open(f"sqlite:///{target}")
    try:
        assert copy.schema_is_current()
    finally:
        copy.close()

    again = run(cli_env, "backup", str(target), check=False)
    assert again.returncode == 2
    assert f"{target} exists" in again.stderr

    on_postgres = {**cli_env, "DATABASE_URL": "postgresql+psycopg://ingest@127.0.0.1:1/ingest"}
    refused = run(on_postgres, "backup", str(tmp_path / "pg.db"), check=False)
    assert refused.returncode == 2
    assert "pg_dump -Fc" in refused.stderr
    assert not (tmp_path / "pg.db").exists()
