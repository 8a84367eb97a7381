"""`ingest status`, `ingest jobs` and `ingest search` as a user reads them."""

from __future__ import annotations

from pathlib import Path

from ingest.ingestion.maintenance import CLEANUP_STAGED, INTEGRITY
from ingest.store import NewJob, Store
from ingest.vocabulary import Queue
from tests.acceptance.test_cli import run, run_json
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
