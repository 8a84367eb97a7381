"""`ingest add` as a user runs it again and again: real processes, a real SQLite file."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from tests.acceptance.test_cli import make_corpus, run, run_json
from tests.fixtures_docs import make_corrupt_pdf, make_empty, make_txt


def _job_count(env: dict[str, str]) -> int:
    jobs = run_json(env, "jobs", "list", "--limit", "1000")["jobs"]
    assert isinstance(jobs, list)
    return len(jobs)


def test_a_rerun_skips_known_failures_until_the_file_changes(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    docs = make_corpus(tmp_path / "docs", count=2)
    make_corrupt_pdf(docs, "broken.pdf")
    make_empty(docs, "empty.txt")
    (docs / "picture.bmp").write_bytes(b"BM" + b"\x00" * 64)  # no parser reads .bmp

    first = run(cli_env, "add", str(docs), "--json", check=False)
    assert first.returncode == 1, first.stderr
    assert json.loads(first.stdout)["failed"] == 3
    jobs_after_first = _job_count(cli_env)

    # Nothing changed: no job is queued again, the run succeeds, and says why each
    # file is still not indexed.
    second = run(cli_env, "add", str(docs), check=False)
    assert second.returncode == 0, second.stderr
    assert "failed 0, known failures 3" in second.stdout
    for name in ("broken.pdf", "empty.txt", "picture.bmp"):
        assert any(
            line.startswith("known failure") and name in line for line in second.stderr.splitlines()
        ), second.stderr
    assert _job_count(cli_env) == jobs_after_first

    report = run_json(cli_env, "add", str(docs))
    assert (report["skipped"], report["failed"], report["errors"]) == (2, 0, [])
    known = {Path(k["source"]).name: k["reason"] for k in report["known_failures"]}  # type: ignore[attr-defined]
    assert set(known) == {"broken.pdf", "empty.txt", "picture.bmp"}
    assert "PDF" in known["broken.pdf"]

    # A changed file is tried again, and its failure is new in that run.
    (docs / "picture.bmp").write_bytes(b"BM" + b"\x01" * 64)
    third = run(cli_env, "add", str(docs), "--json", check=False)
    assert third.returncode == 1
    changed = json.loads(third.stdout)
    assert changed["failed"] == 1
    assert Path(changed["errors"][0]["source"]).name == "picture.bmp"
    assert len(changed["known_failures"]) == 2


def test_priority_orders_the_queue_and_is_range_checked(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "INGEST_CONCURRENCY": "1"}  # one job at a time: the order shows
    docs = make_corpus(tmp_path / "docs", count=2)
    low, high = docs / "note0.txt", docs / "note1.txt"
    queued_low = run_json(env, "add", str(low), "--no-wait", "--priority", "-10")
    queued_high = run_json(env, "add", str(high), "--no-wait", "--priority", "10")
    assert [j["priority"] for j in queued_low["jobs"]] == [-10]  # type: ignore[index]
    assert [j["priority"] for j in queued_high["jobs"]] == [10]  # type: ignore[index]

    report = run_json(env, "add", str(docs))  # follows the two queued jobs
    assert report["added"] == 2, report
    jobs = run_json(env, "jobs", "list")["jobs"]
    started = {j["priority"]: j["started_at"] for j in jobs}  # type: ignore[attr-defined]
    assert started[10] < started[-10], jobs  # ISO 8601 in UTC sorts as time

    too_high = run(env, "add", str(docs), "--priority", "101", check=False)
    assert too_high.returncode == 2
    assert "--priority" in too_high.stderr


def test_without_a_terminal_each_finished_document_gets_a_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # Output piped (`ingest add ... 2>&1 | tee log`): no bar can show, so the run
    # says what it finished as it goes.
    docs = make_corpus(tmp_path / "docs", count=3)
    make_corrupt_pdf(docs, "broken.pdf")
    proc = run(cli_env, "add", str(docs), check=False)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    for name in ("note0.txt", "note1.txt", "note2.txt"):
        assert any(line.startswith("[") and "] added " in line and name in line for line in lines)
    assert any("] failed " in line and "broken.pdf" in line for line in lines), proc.stderr
    counters = sorted(line.split("]")[0] for line in lines if line.startswith("["))
    assert counters == ["[1/4", "[2/4", "[3/4", "[4/4"]

    (docs / "broken.pdf").unlink()
    (docs / "note3.txt").write_text("The relay restarts at noon on Sundays.")
    quiet = run(cli_env, "add", str(docs), "--quiet")
    assert "] added " not in quiet.stderr
    assert "added 1, updated 0, skipped 3" in quiet.stdout


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_members_are_searchable_and_a_zip_bomb_fails_alone(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # Parsing isolated, as by default: the members are expanded in the parser process.
    env = {**cli_env, "INGEST_CONTAINER_MAX_EXPANDED_MB": "2"}
    docs = tmp_path / "docs"
    docs.mkdir()
    text = "The lighthouse keeper logs the foghorn tests every Sunday at noon."
    (docs / "good.zip").write_bytes(_zip({"dir/log.txt": text.encode()}))
    # Declares a few KB; the archive inside it expands to 20 MB of zeros.
    inner = _zip({"zeros.txt": bytes(20 * 1024 * 1024)})
    (docs / "bomb.zip").write_bytes(_zip({"inner.zip": inner, "a.txt": b"hello there"}))

    proc = run(env, "add", str(docs), "--json", check=False)

    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["added"], report["failed"]) == (1, 1)
    assert Path(report["errors"][0]["source"]).name == "bomb.zip"
    assert "INGEST_CONTAINER_MAX_EXPANDED_MB" in report["errors"][0]["reason"]
    hits = run_json(env, "search", "lighthouse foghorn", "--k", "1")["results"]
    assert isinstance(hits, list)
    assert hits[0]["source"] == f"{docs / 'good.zip'}!/dir/log.txt"
    status = run_json(env, "status")
    assert status["by_status"] == {"ready": 2, "failed": 1}


def test_adding_the_folder_that_holds_the_database_leaves_ingests_own_files_alone(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # cli_env keeps its database (cli.db, with -wal/-shm) and incoming folder right
    # in tmp_path: `ingest add .` from the folder where ingest.db lives, as a user does.
    make_txt(tmp_path, "a.txt", "Apples ripen in the autumn.")
    make_txt(tmp_path, "b.txt", "Bees make honey in the summer.")
    (tmp_path / "incoming" / "abc").mkdir(parents=True)
    (tmp_path / "incoming" / "abc" / "staged.txt").write_text("bytes waiting for a worker")

    first = run_json(cli_env, "add", str(tmp_path))
    assert (first["added"], first["failed"], first["errors"]) == (2, 0, []), first
    # The second run meets the database's -wal and -shm files too.
    second = run_json(cli_env, "add", str(tmp_path))
    assert (second["skipped"], second["failed"], second["errors"]) == (2, 0, []), second
