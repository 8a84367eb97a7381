"""Admin actions through the CLI land in the audit log, as the API's calls do."""

from __future__ import annotations

import getpass
from pathlib import Path

from ingest.store import Store
from ingest.store.access import Access
from tests.acceptance.test_cli import run, run_json
from tests.fixtures_docs import make_txt


def test_keys_and_job_actions_are_audited_with_the_os_user(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    created = run_json(cli_env, "keys", "create", "--role", "editor", "--name", "ci")
    key_id = str(created["id"])
    run(cli_env, "keys", "revoke", key_id)
    again = run(cli_env, "keys", "revoke", key_id, check=False)
    assert again.returncode == 2

    doc = make_txt(tmp_path / "docs", "a.txt", "The relay restarts at noon on Sundays.")
    queued = run_json(cli_env, "add", str(doc), "--no-wait")
    job_id = queued["jobs"][0]["job_id"]  # type: ignore[index]
    run(cli_env, "jobs", "cancel", job_id)
    finished = run(cli_env, "jobs", "cancel", job_id, check=False)
    # The API answers this with 409 and the same words as its `detail`.
    assert finished.returncode == 2
    assert f"error: job {job_id} is cancelled" in finished.stderr
    run(cli_env, "jobs", "retry", job_id)

    store = Store.open(cli_env["DATABASE_URL"])
    try:
        entries = list(reversed(Access(store.engine).audit_entries(limit=100)))
    finally:
        store.close()
    assert {(e["actor"], e["source_ip"]) for e in entries} == {(f"cli:{getpass.getuser()}", "cli")}
    assert [(e["action"], e["target"], e["outcome"], e["status_code"]) for e in entries] == [
        ("keys create", f"{key_id} (editor)", "success", 0),
        ("keys revoke", key_id, "success", 0),
        ("keys revoke", key_id, "error", 2),
        ("jobs cancel", job_id, "success", 0),
        ("jobs cancel", job_id, "error", 2),
        ("jobs retry", job_id, "success", 0),
    ]
