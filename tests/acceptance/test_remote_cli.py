"""`ingest --server URL` (or INGEST_SERVER_URL): add, search, status and jobs go through
a real `ingest serve` and print what the local commands print."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_docs import make_md, make_txt, prose
from tests.support.processes import INGEST, run_cli_json
from tests.support.server import Served, serve_inline

pytestmark = pytest.mark.slow

OTTER = "The otter observatory at Brindlecombe counts nineteen river otters each dawn."


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_inline(tmp_path_factory.mktemp("remote-cli")) as server:
        yield server


def remote_env(served: Served, role: str = "admin") -> dict[str, str]:
    """No usable database here: every answer must come from the server."""
    return {
        **served.env,
        "DATABASE_URL": "sqlite:////nonexistent-ingest-dir/never.db",
        "INGEST_SERVER_URL": served.url,
        "INGEST_API_KEY": served.key(role),
    }


def keys(value: Any) -> Any:
    """The shape of a JSON value: its keys, recursively, without the values."""
    if isinstance(value, dict):
        return {k: keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [keys(value[0])] if value else []
    return type(value).__name__


def test_remote_commands_print_what_local_ones_print(served: Served, tmp_path: Path) -> None:
    local, remote = served.env, remote_env(served)
    here = make_md(tmp_path / "local", "otters.md", f"# Otters\n\n{OTTER}\n\n{prose(60, 1)}")
    there = make_txt(tmp_path / "remote", "notes.txt", prose(80, 2))

    added_here = run_cli_json(local, "add", str(here), "--collection", "shared")
    added_there = run_cli_json(remote, "add", str(there), "--collection", "shared")
    assert keys(added_there) == keys(added_here)
    assert added_there["added"] == 1
    assert added_there["failed"] == 0
    assert added_there["chunks"] >= 1

    query = ("search", "otter observatory Brindlecombe", "--collection", "shared")
    found_here, found_there = run_cli_json(local, *query), run_cli_json(remote, *query)
    assert found_there == found_here
    assert found_there["results"][0]["source"].endswith("otters.md")

    status_here, status_there = run_cli_json(local, "status"), run_cli_json(remote, "status")
    assert set(status_there) == set(status_here)
    assert status_there["documents"] == status_here["documents"] == 2
    assert status_there["jobs"] == status_here["jobs"]

    listed_here = run_cli_json(local, "jobs", "list", "--status", "succeeded")
    listed_there = run_cli_json(remote, "jobs", "list", "--status", "succeeded")
    assert keys(listed_there) == keys(listed_here)
    assert {j["job_id"] for j in listed_there["jobs"]} == {j["job_id"] for j in listed_here["jobs"]}

    job_id = listed_here["jobs"][0]["job_id"]
    shown_there = run_cli_json(remote, "jobs", "show", job_id)
    assert shown_there == run_cli_json(local, "jobs", "show", job_id)


def test_server_option_and_refusals_exit_2_with_the_reason(served: Served, tmp_path: Path) -> None:
    env = {**served.env, "DATABASE_URL": "sqlite:////nonexistent-ingest-dir/never.db"}
    env["INGEST_API_KEY"] = served.key("viewer")
    found = run_cli_json(env, "--server", served.url, "search", "anything at all")
    assert found == {"results": []} or "results" in found

    doc = make_txt(tmp_path, "a.txt", prose(20, 3))
    refused = _run(env, "--server", served.url, "add", str(doc))
    assert refused.returncode == 2
    assert "403" in refused.stderr

    missing = _run(env, "--server", served.url, "jobs", "show", "no-such-job")
    assert missing.returncode == 2
    assert "404" in missing.stderr

    without_key = {k: v for k, v in env.items() if k != "INGEST_API_KEY"}
    unauthenticated = _run(without_key, "--server", served.url, "status")
    assert unauthenticated.returncode == 2
    assert "INGEST_API_KEY" in unauthenticated.stderr


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INGEST, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_remote_sources_print_what_local_ones_print(served: Served, tmp_path: Path) -> None:
    local, remote = served.env, remote_env(served)
    folder = make_txt(tmp_path / "share", "rota.txt", prose(40, 3)).parent
    added = run_cli_json(local, "sources", "add", str(folder), "--collection", "synced")
    source_id = added["source"]["source_id"]
    assert added["job"]["status"] == "succeeded"

    assert run_cli_json(remote, "sources", "list") == run_cli_json(local, "sources", "list")
    shown = run_cli_json(remote, "sources", "show", source_id)
    assert shown == run_cli_json(local, "sources", "show", source_id)
    synced = run_cli_json(remote, "sources", "sync", source_id)
    assert synced["job"]["status"] == "succeeded"
    assert synced["source"]["last_sync"]["report"]["unchanged"] == 1

    # The server has no INGEST_SOURCE_ROOTS: its API adds no folder source.
    refused = subprocess.run(
        [*INGEST, "sources", "add", str(folder), "--collection", "other"],
        env=remote,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2
    assert "INGEST_SOURCE_ROOTS" in refused.stderr
    run_cli_json(remote, "sources", "remove", source_id)
    assert run_cli_json(local, "sources", "list") == {"sources": []}
