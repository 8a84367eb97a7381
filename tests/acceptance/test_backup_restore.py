"""Backups taken the way docs/operations.md says (`ingest backup` on SQLite, `pg_dump
-Fc` on PostgreSQL; then the incoming dir), WHILE a worker process ingests, restored
into a new database a new worker then runs on.

Two documents' embedding requests are held at the embedding server during the backup,
so their jobs are running on the live worker (heartbeating, their lease renewed) while
the third slot goes on committing documents. After the restore that worker is gone:
its leases expire, the new worker reaps and re-runs those jobs and runs the queued
ones; every document is then searchable once, with no duplicate chunk.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

import pytest

from ingest.store import Store
from tests.fixtures_docs import make_txt, prose
from tests.support.fake_openai import API_KEY, MODEL, FakeOpenAI
from tests.support.postgres import PostgresServer, bin_dir
from tests.support.processes import Proc, Spawner, run_cli_json, wait_until
from tests.support.store_checks import duplicate_chunk_count

pytestmark = pytest.mark.slow

HELD_WORD = "embargoed"
HELD = 2
FREE = 14


def unique_word(i: int) -> str:
    """A word only document `i` holds (letters only: one token on both backends)."""
    return "zq" + "".join(chr(ord("a") + int(d)) for d in f"{i:03d}")


def write_corpus(folder: Path) -> list[str]:
    """The held documents sort first, so the worker claims them first."""
    words = []
    for i in range(HELD + FREE):
        held = f" {HELD_WORD}" if i < HELD else ""
        name = f"{'a-held' if i < HELD else 'doc'}-{i:02}.txt"
        make_txt(folder, name, f"Report {unique_word(i)}{held}. " + prose(80, i))
        words.append(unique_word(i))
    return words


def fresh_database(backend: str, tmp_path: Path, name: str, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{(tmp_path / f'{name}.db').resolve()}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def take_backup(backend: str, env: dict[str, str], target: Path) -> None:
    if backend == "sqlite":
        report = run_cli_json(env, "backup", str(target))
        assert report["bytes"] == target.stat().st_size > 0
        return
    subprocess.run(
        [
            str(bin_dir() / "pg_dump"),
            "-Fc",
            "-d",
            libpq_url(env["DATABASE_URL"]),
            "-f",
            str(target),
        ],
        check=True,
        capture_output=True,
    )


def restore(backend: str, backup: Path, url: str) -> None:
    if backend == "sqlite":
        shutil.copyfile(backup, url.removeprefix("sqlite:///"))
        return
    subprocess.run(
        [str(bin_dir() / "pg_restore"), "--no-owner", "-d", libpq_url(url), str(backup)],
        check=True,
        capture_output=True,
    )


def copy_incoming(source: Path, target: Path) -> None:
    """A plain copy, as the docs say; a file deleted meanwhile (its job finished after
    the database backup) is simply not needed."""
    for path in source.rglob("*"):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                shutil.copy2(path, destination)


def statuses(store: Store, job_ids: list[str]) -> dict[str, str]:
    return {j.id: str(j.status) for j in store.jobs.get_many(job_ids)}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_backup_taken_while_a_worker_ingests_restores_and_every_job_finishes(
    backend: str,
    tmp_path: Path,
    queue_env: dict[str, str],
    spawn: Spawner,
    fake_openai: FakeOpenAI,
    request: pytest.FixtureRequest,
) -> None:
    live_url = fresh_database(backend, tmp_path, "live", request)
    env = {
        **queue_env,
        "DATABASE_URL": live_url,
        "INGEST_INCOMING_DIR": str(tmp_path / "incoming"),
        "INGEST_EMBEDDER": "openai",
        "INGEST_EMBEDDING_URL": fake_openai.url,
        "INGEST_EMBEDDING_MODEL": MODEL,
        "INGEST_EMBEDDING_API_KEY": API_KEY,
        "INGEST_EMBEDDING_TIMEOUT_S": "300",  # held requests wait, they do not time out
    }
    live = Store.open(live_url)
    live.migrate()
    words = write_corpus(tmp_path / "docs")
    job_ids = [
        j["job_id"] for j in run_cli_json(env, "add", str(tmp_path / "docs"), "--no-wait")["jobs"]
    ]
    fake_openai.hold(HELD_WORD)
    worker = spawn.worker(env, concurrency=3, name="live-worker")

    def mid_ingest() -> bool:
        now = list(statuses(live, job_ids).values())
        return now.count("succeeded") >= 3 and now.count("running") >= HELD

    try:
        wait_until(mid_ingest, 120, interval=0.1, message="ingestion under way", alive=[worker])
        backup = tmp_path / f"backup.{'db' if backend == 'sqlite' else 'dump'}"
        take_backup(backend, env, backup)  # the database first, then the incoming dir
        copy_incoming(tmp_path / "incoming", tmp_path / "restored-incoming")
    finally:
        live.close()
    worker.kill()  # the backup's running jobs belong to a worker that never comes back
    fake_openai.release()

    restored_url = fresh_database(backend, tmp_path, "restored", request)
    restore(backend, backup, restored_url)
    store = Store.open(restored_url)
    try:
        at_backup = statuses(store, job_ids)
        assert "succeeded" in at_backup.values()
        assert list(at_backup.values()).count("running") >= HELD  # leased by the dead worker
        restored_env = {
            **env,
            "DATABASE_URL": restored_url,
            "INGEST_INCOMING_DIR": str(tmp_path / "restored-incoming"),
        }
        new_worker = spawn.worker(restored_env, concurrency=2, name="restored-worker")
        finished = finish(store, job_ids, new_worker)
        assert set(finished.values()) == {"succeeded"}, finished
        reruns = [j for j in store.jobs.get_many(job_ids) if at_backup[j.id] == "running"]
        assert all(j.attempt == 2 for j in reruns), [(j.id, j.attempt) for j in reruns]
        assert duplicate_chunk_count(store) == 0
        assert store.counts()["by_status"] == {"ready": HELD + FREE}
        for i, word in enumerate(words):
            found = store.hits([pk for pk, _ in store.keyword_search(word, 3)])
            assert [Path(h.source).name for h in found.values()] == [
                f"{'a-held' if i < HELD else 'doc'}-{i:02}.txt"
            ], word
    finally:
        store.close()


def finish(store: Store, job_ids: list[str], worker: Proc) -> dict[str, str]:
    def all_terminal() -> dict[str, str] | None:
        now = statuses(store, job_ids)
        done = {"succeeded", "failed", "dead", "cancelled"}
        return now if len(now) == len(job_ids) and set(now.values()) <= done else None

    # The dead worker's leases expire (6 s by default) before they are reaped.
    result: dict[str, str] = wait_until(
        all_terminal, 180, interval=0.2, message="restored jobs", alive=[worker]
    )
    return result
