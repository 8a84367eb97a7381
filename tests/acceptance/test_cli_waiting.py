"""`ingest add` never waits in silence: no live worker, Ctrl-C, inline and queue mode."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ingest.store import Job, Store
from ingest.vocabulary import JobStatus
from tests.acceptance.conftest import Database
from tests.fixtures_docs import make_txt, prose
from tests.support.processes import Proc, Spawner, run_cli, wait_until

NO_WORKER = "no live worker takes the ingest queue"


def _says(proc: Proc, text: str, timeout: float = 120) -> None:
    wait_until(lambda: text in proc.log_text(), timeout, message=repr(text), alive=[proc])


def test_queue_mode_says_no_worker_is_alive_then_follows_one(
    queue_env: dict[str, str], spawn: Spawner, tmp_path: Path
) -> None:
    doc = make_txt(tmp_path / "docs", "a.txt", "The relay restarts at noon on Sundays.")
    add = spawn.ingest(queue_env, "add", str(doc), name="add")
    _says(add, NO_WORKER)
    assert "python -m ingest.worker --queues ingest" in add.log_text()

    spawn.worker(queue_env)
    assert add.wait(timeout=240) == 0, add.log_tail()
    assert "is live; following the jobs" in add.log_text()
    assert "added 1," in add.stdout_text()


def test_no_wait_in_queue_mode_exits_at_once_and_says_no_worker_is_alive(
    queue_env: dict[str, str], tmp_path: Path
) -> None:
    doc = make_txt(tmp_path / "docs", "a.txt", "The relay restarts at noon on Sundays.")
    proc = run_cli(queue_env, "add", str(doc), "--no-wait")
    assert NO_WORKER in proc.stderr
    assert len(proc.stdout.split()) == 1  # the job id


def test_ctrl_c_in_queue_mode_leaves_the_jobs_queued_and_says_so(
    queue_env: dict[str, str], spawn: Spawner, db: Database, tmp_path: Path
) -> None:
    doc = make_txt(tmp_path / "docs", "a.txt", "The relay restarts at noon on Sundays.")
    add = spawn.ingest(queue_env, "add", str(doc), name="add")
    _says(add, NO_WORKER)

    os.kill(add.pid, signal.SIGINT)
    assert add.wait(timeout=60) == 130
    assert "the other 1 (0 running) stay in the queue for the workers" in add.log_text()
    assert "Traceback" not in add.log_text()
    assert [j.status for j in db.ledger.list_jobs()] == [JobStatus.QUEUED]


def _running_in_embed(store: Store) -> Job | None:
    running = store.jobs.list_jobs(statuses=[JobStatus.RUNNING])
    return next((j for j in running if j.stage == "embed" and j.progress < 0.5), None)


def test_ctrl_c_inline_hands_the_running_job_back_without_waiting_out_the_grace(
    cli_env: dict[str, str], spawn: Spawner, tmp_path: Path
) -> None:
    # A grace period far longer than the test waits: stopping within it means the
    # command did not wait for the running job to finish or reach its deadline.
    env = {**cli_env, "INGEST_CONCURRENCY": "1", "INGEST_SHUTDOWN_GRACE_SECONDS": "600"}
    docs = tmp_path / "docs"
    make_txt(docs, "big.txt", "\n\n".join(prose(200, i) for i in range(800)))
    make_txt(docs, "small.txt", "The relay restarts at noon on Sundays.")
    db = Database(env["DATABASE_URL"])  # migrated: the test can read it at once
    store = db.store
    try:
        add = spawn.ingest(env, "add", str(docs), name="add")
        running = wait_until(
            lambda: _running_in_embed(store),
            240,
            interval=0.05,
            message="the big document's job to be embedding",
            alive=[add],
        )

        os.kill(add.pid, signal.SIGINT)
        assert add.wait(timeout=60) == 130, add.log_tail()
        said = add.log_text()
        assert "1 running job(s) handed back to the queue" in said, said
        assert "handed back " + str(docs.resolve() / "big.txt") in said
        assert "Traceback" not in said

        job = store.jobs.get(running.id)
        assert job is not None
        # Back in the queue, and the abandoned attempt does not count against it.
        assert (job.status, job.attempt) == (JobStatus.QUEUED, 0)
        assert store.counts()["chunks"] == 0
    finally:
        db.close()


def test_maintenance_run_in_queue_mode_waits_for_a_maintenance_worker_and_says_so(
    queue_env: dict[str, str], spawn: Spawner
) -> None:
    run_maintenance = spawn.ingest(queue_env, "maintenance", "run", "integrity", name="run")
    _says(run_maintenance, "no live worker takes the maintenance queue")
    assert "python -m ingest.worker --queues maintenance" in run_maintenance.log_text()

    spawn.worker(queue_env, queues="maintenance")
    assert run_maintenance.wait(timeout=240) == 0, run_maintenance.log_tail()
    assert "maintenance.integrity succeeded" in run_maintenance.stdout_text()
