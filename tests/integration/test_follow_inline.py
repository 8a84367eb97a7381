"""`ingest add` inline without a bar follows its run by its own worker's count, and
still ends when part of the run ends elsewhere (here: a job cancelled by someone
else while it waited in the queue)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ingest.cli import follow
from ingest.cli.follow import follow_jobs, plan_ingestion, submit_plan
from ingest.context import Context
from ingest.ingestion.actions import cancel_job
from ingest.vocabulary import JobStatus


def test_a_job_cancelled_elsewhere_ends_the_follow(
    sqlite_ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No safeguard read within the test's time limit: the follow must end because
    # its worker, with nothing left to claim, says it is idle.
    monkeypatch.setattr(follow, "_FOLLOW_SAFEGUARD_READ_S", 3600.0)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):
        (docs / f"doc{i}.txt").write_text(f"the {i}th note on durable queues\n", encoding="utf-8")
    plan = plan_ingestion(sqlite_ctx, [docs], collection="default", metadata={})
    jobs = submit_plan(sqlite_ctx, plan, collection="default", metadata={})
    first, cancelled = jobs[0].id, jobs[-1].id
    # Someone else cancels the last job once the run is under way (after the
    # follow's first read), while it still waits its turn in the queue.
    canceller = threading.Thread(target=_cancel_after, args=(sqlite_ctx, first, cancelled))
    canceller.start()
    followed = follow_jobs(sqlite_ctx, [j.id for j in jobs], show_bar=False)
    canceller.join()

    statuses = {j.id: j.status for j in followed}
    assert statuses.pop(cancelled) == JobStatus.CANCELLED
    assert set(statuses.values()) == {JobStatus.SUCCEEDED}


def _cancel_after(ctx: Context, first: str, target: str) -> None:
    deadline = time.monotonic() + 60
    while not _ended(ctx, first):
        assert time.monotonic() < deadline, "the first job never ended"
        time.sleep(0.01)
    cancel_job(ctx.store, target)


def _ended(ctx: Context, job_id: str) -> bool:
    job = ctx.store.jobs.get(job_id)
    return job is not None and job.is_terminal
