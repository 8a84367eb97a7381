"""`ingest add` as jobs: plan (skip what is unchanged), submit, follow to the end,
report. `add_paths` is the whole of it, for callers other than the command."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.cli.watch import RunWatcher, read_interval
from ingest.context import Context
from ingest.errors import RunInterrupted
from ingest.ingestion import actions
from ingest.ingestion.discovery import discover_files, own_paths
from ingest.ingestion.plan import IngestionPlan, plan_files
from ingest.ingestion.results import FileResult, IngestReport
from ingest.store import Claim, Job
from ingest.vocabulary import JobStatus, Queue

if TYPE_CHECKING:
    from ingest.jobs.worker import Worker

_FOLLOW_POLL_S = 0.1
_FOLLOW_IDLE_READ_S = 1.0
_FOLLOW_SAFEGUARD_READ_S = 30.0
err = Console(stderr=True)


def plan_ingestion(
    ctx: Context, paths: Sequence[Path], *, collection: str, metadata: Mapping[str, Any]
) -> IngestionPlan:
    """The files under `paths` that need a job (ingestion/plan.py)."""
    return plan_files(
        ctx.ingestor,
        discover_files(paths, own=own_paths(ctx.settings)),
        collection=collection,
        metadata=metadata,
    )


def submit_plan(
    ctx: Context,
    plan: IngestionPlan,
    *,
    collection: str,
    metadata: Mapping[str, Any],
    priority: int = 0,
) -> list[Job]:
    """Queue a job per file to (re)ingest; queue mode stages the bytes for the workers."""
    return ctx.submitter.submit_paths(
        plan.to_submit,
        collection=collection,
        metadata=metadata,
        stage=ctx.settings.mode == "queue",
        priority=priority,
    )


def finish_add(
    ctx: Context,
    plan: IngestionPlan,
    jobs: Sequence[Job],
    roots: Sequence[Path],
    *,
    collection: str,
    sync: bool,
    show_bar: bool = False,
    show_lines: bool = False,
    warn_no_worker: bool = False,
) -> IngestReport:
    """Follow the run's jobs to the end; with `sync`, drop documents whose file is gone.
    `show_lines`: a line per finished document on stderr (for output without a
    terminal); `warn_no_worker`: in queue mode, say so while no live worker takes them."""
    job_ids = [j.id for j in jobs]
    watch_workers = warn_no_worker and ctx.settings.mode == "queue"
    with RunWatcher(ctx, job_ids, err, lines=show_lines, watch_workers=watch_workers):
        finished = follow_jobs(ctx, job_ids, show_bar=show_bar)
    report = report_from_jobs(finished, skipped=len(plan.skipped))
    report.known_failures = list(plan.known_failures)
    if sync:
        seen = {str(p) for p in plan.all_files}
        report.deleted = actions.delete_missing(ctx.store, roots, collection, seen)
    return report


def add_paths(
    ctx: Context,
    paths: Sequence[Path],
    *,
    collection: str,
    metadata: Mapping[str, Any] | None = None,
    sync: bool = False,
) -> IngestReport:
    """`ingest add PATHS` in this process, through the ledger, without output."""
    meta = dict(metadata or {})
    plan = plan_ingestion(ctx, paths, collection=collection, metadata=meta)
    jobs = submit_plan(ctx, plan, collection=collection, metadata=meta)
    return finish_add(ctx, plan, jobs, paths, collection=collection, sync=sync)


def follow_jobs(ctx: Context, job_ids: Sequence[str], *, show_bar: bool) -> list[Job]:
    """Wait until every job is terminal. Inline mode runs them here and now.

    Each poll reads only the id and status of the jobs still moving (a finished job
    never moves again), and one running job whole for the bar's label; every job is
    read whole once, at the end, for the report."""
    if not job_ids:
        return []
    pending = list(job_ids)
    with _inline_worker(ctx) as worker, _bar(show_bar, len(job_ids)) as update:
        ran, last_read, running = _jobs_run(worker), 0.0, None
        while pending:
            run_since = _jobs_run(worker) - ran
            if run_since >= len(pending) or _read_due(worker, show_bar, last_read, len(pending)):
                ran, last_read = _jobs_run(worker), time.monotonic()
                moving = ctx.ledger.unfinished(pending)
                pending = [j for j in pending if j in moving]
                running_id = next((j for j in pending if moving[j] == JobStatus.RUNNING), None)
                running = ctx.ledger.get(running_id) if show_bar and running_id else None
                run_since = 0
            # Between two reads the bar counts what this process's worker ended.
            counted = max(0, min(run_since, len(pending) - 1))
            update(len(job_ids) - len(pending) + counted, running)
            if pending:
                time.sleep(_FOLLOW_POLL_S)
    return ctx.ledger.get_many(list(job_ids))


def _read_due(worker: Worker | None, show_bar: bool, last_read: float, pending: int) -> bool:
    """Whether to read the pending jobs' status now (besides when this process's
    worker has ended as many jobs as are pending: all may be done).

    With a bar, or jobs run elsewhere, every poll, less often for a large run. Inline
    without a bar, the worker's own count says how the run goes; a read is needed
    only once it finds nothing left to claim (the rest were cancelled, or run by
    another worker) and, as a safeguard, now and then: reading a 5,000-job run's
    statuses every 2.6 s cost ~10 s of CPU over a full SciFact ingest."""
    since = time.monotonic() - last_read
    if show_bar or worker is None:
        return since >= read_interval(pending, _FOLLOW_POLL_S)
    if worker.idle:
        return since >= _FOLLOW_IDLE_READ_S
    return since >= _FOLLOW_SAFEGUARD_READ_S


def _jobs_run(worker: Worker | None) -> int:
    return worker.jobs_run if worker is not None else 0


def wait_for_jobs(ctx: Context, job_ids: Sequence[str], *, queue: str) -> list[Job]:
    """Wait until every job is terminal, without output; inline mode runs them here,
    with a worker on `queue` (for `ingest maintenance run`)."""
    with _inline_worker(ctx, queue=queue):
        while True:
            jobs = ctx.ledger.get_many(list(job_ids))
            if all(j.is_terminal for j in jobs):
                return jobs
            time.sleep(_FOLLOW_POLL_S)


@contextmanager
def _inline_worker(ctx: Context, *, queue: str = Queue.INGEST) -> Iterator[Worker | None]:
    """Inline mode: this process's worker, running the jobs in a thread (None in
    queue mode, where other processes run them)."""
    if ctx.settings.mode != "inline":
        yield None
        return
    worker = ctx.worker(queues=[queue])
    thread = threading.Thread(target=worker.run, name="inline-worker", daemon=True)
    thread.start()
    interrupted = False
    try:
        yield worker
    except KeyboardInterrupt:
        # Ctrl-C: the user wants the prompt back now, not after the worker's grace
        # period (INGEST_SHUTDOWN_GRACE_SECONDS) ends its running jobs.
        interrupted = True
        worker.stop()
        raise RunInterrupted(hand_back_now(ctx, worker.id)) from None
    finally:
        worker.stop()
        if not interrupted:
            thread.join()


def hand_back_now(ctx: Context, worker_id: str) -> list[str]:
    """Return the jobs this process's worker is running to the queue at once, fenced
    by their attempt: the abandoned attempts can no longer write anything, and the
    attempt does not count. Their threads stop at their next checkpoint."""
    running = ctx.ledger.list_jobs(statuses=[JobStatus.RUNNING], limit=10_000)
    handed_back = [
        job.id
        for job in running
        if job.lease_owner == worker_id and ctx.ledger.hand_back(Claim(job, worker_id))
    ]
    # Those threads will log that their lease was lost: expected now, not news.
    logging.getLogger("ingest.jobs.worker").setLevel(logging.ERROR)
    return handed_back


@contextmanager
def _bar(enabled: bool, total: int) -> Iterator[Any]:
    if not enabled:
        yield lambda done, running: None
        return
    with Progress(
        TextColumn("{task.description:<50}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("queued", total=total)

        def update(done: int, running: Job | None) -> None:
            label = "waiting for a worker" if running is None else running_label(running)
            bar.update(task, completed=done, description=label)

        yield update


def running_label(job: Job) -> str:
    """The bar's text for the job in progress: its file, stage and share done; while
    OCR reads a scan, the page it is on ("scan.pdf OCR page 3 of 10 40%")."""
    name = str(job.payload.get("filename", job.id))[:28]
    doing = job.stage or ""
    if job.stage == "ocr" and job.progress_message:
        doing = job.progress_message[:40]
    return f"{name} {doing} {job.progress:.0%}"


def report_from_jobs(jobs: Sequence[Job], *, skipped: int) -> IngestReport:
    report = IngestReport(skipped=skipped)
    for job in jobs:
        report.record(_file_result(job))
    return report


def _file_result(job: Job) -> FileResult:
    source = str(job.payload.get("source_uri", job.id))
    result = job.result or {}
    if job.status == JobStatus.SUCCEEDED:
        return FileResult(
            source,
            result.get("outcome", "added"),
            job.document_id or "",
            chunks=int(result.get("chunks", 0)),
            embedded=int(result.get("embedded", 0)),
        )
    reason = job.error_message or job.status
    if job.status != JobStatus.FAILED:
        reason = f"job {job.status}: {reason}"
    return FileResult(source, "failed", job.document_id or "", reason=reason)
