"""The `ingest` command as a user runs it: real processes, a real SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures_docs import make_corrupt_pdf, make_docx, make_txt
from tests.support.store_checks import duplicate_chunk_count

INGEST = [sys.executable, "-m", "ingest"]
TOPICS = [
    "Rotating the signing keys happens every ninety days through the vault console.",
    "Backups of the ledger database are copied to cold storage each night.",
    "The onboarding checklist covers laptops, badges and payroll access.",
    "Incident reviews are written within five days and shared with every team.",
    "The cafeteria serves vegetarian lunches on Tuesdays and Thursdays.",
]


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*INGEST, *args], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    if check and proc.returncode != 0:
        pytest.fail(f"ingest {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def run_json(env: dict[str, str], *args: str, check: bool = True) -> dict[str, object]:
    proc = run(env, *args, "--json", check=check)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def make_corpus(root: Path, count: int = 5) -> Path:
    root.mkdir()
    for i in range(count):
        make_txt(root, f"note{i}.txt", TOPICS[i % len(TOPICS)] + f" Reference number {i}.")
    return root


def test_add_search_readd_edit_delete_sync(cli_env: dict[str, str], tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "my-docs")
    make_docx(docs, "rota.docx", ["On-call rota"], [["Week", "Engineer"], ["1", "Ptolemy"]])

    first = run_json(cli_env, "add", str(docs))
    assert first["added"] == 6
    assert first["failed"] == 0
    assert first["errors"] == []
    assert isinstance(first["chunks"], int)
    assert first["chunks"] >= 6

    found = run_json(cli_env, "search", "how do I rotate keys", "--k", "3")
    results = found["results"]
    assert isinstance(results, list)
    assert len(results) == 3
    assert Path(results[0]["source"]).name == "note0.txt"
    assert {"document_id", "source", "text", "score"} <= results[0].keys()

    again = run_json(cli_env, "add", str(docs))
    assert (again["skipped"], again["added"], again["embedded"]) == (6, 0, 0)

    (docs / "note1.txt").write_text(TOPICS[1] + " Reference number 1. Now kept for a year.")
    (docs / "note2.txt").unlink()
    synced = run_json(cli_env, "add", str(docs), "--sync")
    assert (synced["updated"], synced["deleted"], synced["skipped"]) == (1, 1, 4)

    status = run_json(cli_env, "status")
    assert status["documents"] == 5
    assert status["by_status"] == {"ready": 5}
    assert isinstance(status["chunks"], int)
    assert status["chunks"] >= 5
    hits = run_json(cli_env, "search", "onboarding checklist laptops badges", "--k", "10")
    assert all(Path(h["source"]).name != "note2.txt" for h in hits["results"])  # type: ignore[union-attr]


def test_failed_document_exits_1_and_reports_it(cli_env: dict[str, str], tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs", count=2)
    make_corrupt_pdf(docs, "broken.pdf")
    proc = run(cli_env, "add", str(docs), "--json", check=False)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert (report["added"], report["failed"]) == (2, 1)
    assert Path(report["errors"][0]["source"]).name == "broken.pdf"
    assert "PDF" in report["errors"][0]["reason"]


def test_human_output_summarises_the_run(cli_env: dict[str, str], tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs", count=2)
    proc = run(cli_env, "add", str(docs))
    assert "added 2, updated 0, skipped 0, deleted 0, failed 0" in proc.stdout


def test_missing_path_is_a_clear_error(cli_env: dict[str, str], tmp_path: Path) -> None:
    proc = run(cli_env, "add", str(tmp_path / "nope"), check=False)
    assert proc.returncode == 2
    assert "no such file or directory" in proc.stderr


def test_two_processes_ingesting_one_folder_leave_no_duplicates(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    docs = make_corpus(tmp_path / "docs", count=20)
    procs = [
        subprocess.Popen(
            [*INGEST, "add", str(docs), "--json"],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    reports = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr
        reports.append(json.loads(stdout))
    assert all(r["failed"] == 0 for r in reports)

    status = run_json(cli_env, "status")
    assert status["documents"] == 20
    assert status["chunks"] == 20  # each short note is exactly one chunk

    from ingest.store import Store

    store = Store.open(cli_env["DATABASE_URL"])
    try:
        assert duplicate_chunk_count(store) == 0
        assert store.counts()["chunks"] == sum(d.chunk_count for d in store.documents_in("default"))
    finally:
        store.close()


def test_migrate_is_idempotent(cli_env: dict[str, str]) -> None:
    first = run(cli_env, "migrate")
    assert "migrated" in first.stdout
    second = run(cli_env, "migrate")
    assert "already at revision" in second.stdout


def test_add_again_after_an_interrupted_run_follows_the_queued_jobs(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # `--no-wait` leaves the jobs queued, as a run killed before its worker got to
    # them would; the next `ingest add` must not queue every file a second time.
    corpus = make_corpus(tmp_path / "docs", count=3)
    first = run_json(cli_env, "add", str(corpus), "--no-wait")
    again = run_json(cli_env, "add", str(corpus), "--no-wait")
    first_ids = sorted(job["job_id"] for job in first["jobs"])  # type: ignore[attr-defined]
    assert sorted(job["job_id"] for job in again["jobs"]) == first_ids  # type: ignore[attr-defined]

    report = run_json(cli_env, "add", str(corpus))
    assert report["added"] == 3, report
    assert report["skipped"] == 0
    jobs = run_json(cli_env, "jobs", "list")["jobs"]
    assert sorted(job["job_id"] for job in jobs) == first_ids  # type: ignore[attr-defined]
    assert {job["status"] for job in jobs} == {"succeeded"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("variable", "value", "command"),
    [
        ("INGEST_MODE", "bogus", [*INGEST, "status"]),
        ("INGEST_CONCURRENCY", "0", [sys.executable, "-m", "ingest.worker"]),
        ("INGEST_LOG_LEVEL", "loud", [*INGEST, "scheduler"]),
        ("INGEST_MAX_ATTEMPTS", "many", [*INGEST, "serve", "--port", "1"]),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable_and_exit_2(
    cli_env: dict[str, str], variable: str, value: str, command: list[str]
) -> None:
    env = {**cli_env, variable: value}
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{variable}={value!r}" in lines[0]
    assert "Traceback" not in proc.stderr


def test_metadata_cannot_replace_the_recorded_filename(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    docs = make_corpus(tmp_path / "docs", count=1)
    refused = run(cli_env, "add", str(docs), "--meta", "filename=forged.txt", check=False)
    assert refused.returncode == 2
    assert "filename" in refused.stderr
    assert "forged.txt" not in run(cli_env, "status", "--json").stdout
