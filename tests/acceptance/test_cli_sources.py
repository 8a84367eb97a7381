"""`ingest sources` as a user runs it (inline mode): add a folder, see it synced and
searchable, sync again after edits, see a missing folder fail, remove it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.acceptance.test_cli import run, run_json
from tests.fixtures_docs import make_txt


def test_sources_add_list_show_sync_remove(cli_env: dict[str, str], tmp_path: Path) -> None:
    docs = tmp_path / "share"
    make_txt(docs, "keys.txt", "Rotating the signing keys happens every ninety days.")
    make_txt(docs, "draft.txt", "A draft nobody should find.")
    make_txt(docs, "agenda.md", "# Agenda\n\nNot a text file: outside the include glob.")

    added: dict[str, Any] = run_json(
        cli_env, "sources", "add", str(docs), "--collection", "team", "--every", "15m",
        "--include", "*.txt", "--exclude", "draft*",
    )  # fmt: skip
    source_id = added["source"]["source_id"]
    assert (added["source"]["include"], added["source"]["exclude"]) == (["*.txt"], ["draft*"])
    assert added["job"]["status"] == "succeeded"
    assert {k: added["source"]["last_sync"]["report"][k] for k in ("listed", "submitted")} == {
        "listed": 1,
        "submitted": 1,
    }
    hits = run(cli_env, "search", "signing keys", "--collection", "team").stdout
    assert "keys.txt" in hits

    listed: dict[str, Any] = run_json(cli_env, "sources", "list")
    assert [s["source_id"] for s in listed["sources"]] == [source_id]
    assert listed["sources"][0]["interval_seconds"] == 900

    (docs / "keys.txt").unlink()
    make_txt(docs, "backups.txt", "Backups are copied to cold storage every night.")
    synced: dict[str, Any] = run_json(cli_env, "sources", "sync", source_id)
    report = synced["source"]["last_sync"]["report"]
    assert (report["submitted"], report["deleted"]) == (1, 1)
    shown = run(cli_env, "sources", "show", source_id).stdout
    assert "submitted 1" in shown
    assert "deleted 1" in shown

    shutil.rmtree(docs)
    failed = run(cli_env, "sources", "sync", source_id, check=False)
    assert failed.returncode == 1
    assert "no such folder" in failed.stdout
    assert "backups.txt" in run(cli_env, "search", "cold storage", "--collection", "team").stdout

    run(cli_env, "sources", "remove", source_id)
    assert run_json(cli_env, "sources", "list") == {"sources": []}
    missing = run(cli_env, "sources", "show", source_id, check=False)
    assert missing.returncode == 2
    assert f"no source {source_id}" in missing.stderr
