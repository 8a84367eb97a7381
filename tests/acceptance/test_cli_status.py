"""`ingest status`, `ingest jobs` and `ingest search` as a user reads them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ingest.ingestion.maintenance import CLEANUP_STAGED, INTEGRITY, TASKS
from ingest.store import NewJob, Store
from ingest.vocabulary import Queue
from tests.acceptance.test_cli import INGEST, run, run_json
from tests.fixtures_docs import make_md


def _submit_maintenance(database_url: str, *kinds: str) -> None:
    """What a scheduler does each slot: maintenance jobs in the ledger."""
    store = Store.open(database_url)
    try:
        for kind in kinds:
            store.jobs.submit(NewJob(kind=kind, payload={}, queue=Queue.MAINTENANCE))
    finally:
        store.close()


def test_status_names_each_queue_and_jobs_list_takes_a_kind_family(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_md(docs, "runbook.md", "Restart the relay, then see [the escalation list](http://x).")
    run(cli_env, "add", str(docs))
    _submit_maintenance(cli_env["DATABASE_URL"], CLEANUP_STAGED, INTEGRITY)

    status = run(cli_env, "status").stdout
    assert "jobs [ingest]" in status
    assert "jobs [maintenance]" in status

    family = run_json(cli_env, "jobs", "list", "--kind", "maintenance")["jobs"]
    assert sorted(j["kind"] for j in family) == sorted([CLEANUP_STAGED, INTEGRITY])  # type: ignore[attr-defined]
    exact = run_json(cli_env, "jobs", "list", "--kind", INTEGRITY)["jobs"]
    assert [j["kind"] for j in exact] == [INTEGRITY]  # type: ignore[attr-defined]
    ingest = run_json(cli_env, "jobs", "list", "--kind", "ingest")["jobs"]
    assert [j["kind"] for j in ingest] == ["ingest"]  # type: ignore[attr-defined]

    # A document's own brackets are text, not terminal markup.
    found = run(cli_env, "search", "escalation list relay", "--k", "1").stdout
    assert "[the escalation list]" in found


def _run_in(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*INGEST, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_a_new_empty_database_is_named_and_said_to_be_empty(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # Run from a folder with no ingest.db and no DATABASE_URL: the default
    # ./ingest.db is created there, empty. That must not pass in silence.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in cli_env.items() if k != "DATABASE_URL"}
    created = elsewhere / "ingest.db"

    status = _run_in(elsewhere, env, "status")
    assert f"created a new, empty database {created}" in status.stderr
    assert "holds no documents" in status.stdout
    assert str(created) in status.stdout

    search = _run_in(elsewhere, env, "search", "rotate the keys", "--json")
    assert json.loads(search.stdout) == {"results": []}
    assert "created a new" not in search.stderr  # it exists now
    assert f"the database {created} holds no documents" in search.stderr

    report = json.loads(_run_in(elsewhere, env, "status", "--json").stdout)
    assert report["database"] == str(created)


def test_maintenance_runs_now_and_status_says_when_integrity_was_checked(
    cli_env: dict[str, str],
) -> None:
    # No scheduler runs in CLI-only use: the integrity check runs when asked.
    assert "not checked yet" in run(cli_env, "status").stdout

    checked = run(cli_env, "maintenance", "run", "integrity")
    assert "maintenance.integrity succeeded: " in checked.stdout
    assert "ok yes" in checked.stdout

    report = run_json(cli_env, "status")
    assert report["integrity"]["ok"] is True  # type: ignore[index]
    assert isinstance(report["integrity_checked_at"], str)
    shown = run(cli_env, "status").stdout
    assert "not checked yet" not in shown
    assert "min ago" in shown

    everything = run_json(cli_env, "maintenance", "run")["jobs"]
    assert sorted(j["kind"] for j in everything) == sorted(TASKS)  # type: ignore[attr-defined]
    assert {j["status"] for j in everything} == {"succeeded"}  # type: ignore[attr-defined]

    unknown = run(cli_env, "maintenance", "run", "vacuum", check=False)
    assert unknown.returncode == 2
    assert "no maintenance task 'vacuum'" in unknown.stderr
