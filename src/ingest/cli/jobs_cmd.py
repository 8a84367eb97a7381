"""`ingest jobs ...`, `ingest worker`, `ingest scheduler`."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ingest.cli import remote
from ingest.cli.common import audited, out, print_json, run_settings, service_context, use_settings
from ingest.errors import ConfigError
from ingest.ingestion import actions
from ingest.jobs.scheduler import Scheduler
from ingest.jobs.views import job_view
from ingest.logs import configure_logging
from ingest.settings import load_settings
from ingest.store import Job
from ingest.vocabulary import JobStatus

jobs_app = typer.Typer(help="See and steer jobs.", no_args_is_help=True)

STATUSES = tuple(JobStatus)


def _print_jobs(jobs: list[Job], as_json: bool, *, traceback: bool = False) -> None:
    if as_json:
        print_json({"jobs": [job_view(j, include_traceback=traceback) for j in jobs]})
        return
    if not jobs:
        out.print("no jobs")
        return
    table = Table("kind", "status", "progress", "attempt", "source / error")
    table.add_column("job_id", no_wrap=True, min_width=32)
    for job in jobs:
        detail = job.error_message if job.error_message else str(job.payload.get("source_uri", ""))
        table.add_row(
            job.kind,
            job.status,
            f"{job.progress:.0%}",
            f"{job.attempt}/{job.max_attempts}",
            escape((detail or "")[:80]),  # an error or a path is not Rich markup
            job.id,
        )
    out.print(table)


@jobs_app.command("list")
def list_jobs(
    status: Annotated[
        list[str] | None, typer.Option("--status", help=f"One of {', '.join(STATUSES)}.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help="Only this kind or family: ingest, maintenance (all maintenance.* kinds), "
            "maintenance.integrity..."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recent jobs, newest first."""
    for s in status or []:
        if s not in STATUSES:
            raise typer.BadParameter(f"unknown status {s!r}", param_hint="--status")
    if remote.server_url():
        remote.jobs_list(status or [], kind, limit, as_json)
        return
    with service_context() as ctx:
        jobs = ctx.ledger.list_jobs(
            statuses=[JobStatus(s) for s in status or []], kind_family=kind, limit=limit
        )
    _print_jobs(jobs, as_json)


@jobs_app.command()
def show(job_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One job in full, with its stage history and error traceback."""
    if remote.server_url():
        remote.jobs_show(job_id, as_json)
        return
    with service_context() as ctx:
        job = actions.get_job(ctx.store, job_id)
    if as_json:
        _print_jobs([job], True, traceback=True)
        return
    view = job_view(job, include_traceback=True)
    for key, value in view.items():
        if key != "stages":
            out.print(f"[bold]{key}[/]: {escape(str(value))}", highlight=False)
    for stage in job.stages:
        took = stage["ended_at"] - stage["started_at"]
        out.print(f"  stage {stage['stage']}: {stage['current']}/{stage['total']} in {took:.2f} s")


@jobs_app.command()
def cancel(job_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Cancel: a queued job at once, a running one at its next checkpoint."""
    if remote.server_url():
        remote.jobs_cancel(job_id, as_json)
        return
    with service_context() as ctx, audited(ctx, "jobs cancel", job_id):
        job = actions.cancel_job(ctx.store, job_id)
    _print_jobs([job], as_json)


@jobs_app.command()
def retry(job_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Re-queue a failed, dead or cancelled job for a fresh set of attempts."""
    if remote.server_url():
        remote.jobs_retry(job_id, as_json)
        return
    with service_context() as ctx, audited(ctx, "jobs retry", job_id):
        job = actions.retry_job(ctx.store, ctx.settings, ctx.doorbell, job_id)
    _print_jobs([job], as_json)


@jobs_app.command()
def dead(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The dead-letter list: jobs that failed every attempt."""
    if remote.server_url():
        remote.jobs_list([JobStatus.DEAD], None, limit, as_json)
        return
    with service_context() as ctx:
        jobs = ctx.ledger.list_jobs(statuses=[JobStatus.DEAD], limit=limit)
    _print_jobs(jobs, as_json)


# --- long-running processes --------------------------------------------------------


def _log_at_info_unless_set() -> None:
    # What a long-running process does is its output: info, unless INGEST_LOG_LEVEL says.
    configure_logging(run_settings(), default_level="info")


def _on_termination(callback: Callable[[], None]) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("ingest").info("received %s, shutting down", signal.Signals(signum).name)
        callback()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def worker(
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated queues to take jobs from.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=64, help="Jobs run at once.")
    ] = None,
    burst: Annotated[bool, typer.Option("--burst", help="Drain the queues, then exit.")] = False,
) -> None:
    """Run jobs from the ledger until stopped (SIGTERM: finish or hand back, then exit)."""
    _log_at_info_unless_set()
    with service_context() as ctx:
        names = [q.strip() for q in queues.split(",")] if queues else None
        w = ctx.worker(queues=names, concurrency=concurrency, burst=burst)
        _on_termination(w.stop)
        w.run()


def scheduler() -> None:
    """Enqueue periodic maintenance jobs (safe to run several replicas)."""
    _log_at_info_unless_set()
    with service_context() as ctx:
        s = Scheduler(ctx.runtime)
        _on_termination(s.stop)
        s.run()


def register_processes(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(scheduler)


def worker_main() -> None:
    """`python -m ingest.worker`: the worker command on its own, settings read once."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command()(worker)
    use_settings(settings)
    single(args=sys.argv[1:], prog_name="python -m ingest.worker")
