"""`ingest maintenance run [TASK]...`: the scheduler's periodic tasks, once, now.

Without a scheduler (CLI-only use) nothing else runs them, the integrity check
included. Inline mode runs them in this process, as `ingest add` runs its jobs;
queue mode queues them for the workers and waits, saying so when no worker is alive.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from ingest.cli.common import err, exit_now, out, print_json, service_context
from ingest.errors import RunInterrupted
from ingest.ingestion import actions
from ingest.ingestion.maintenance import TASKS
from ingest.jobs.views import job_view
from ingest.store import Job
from ingest.vocabulary import JobStatus, Queue

maintenance_app = typer.Typer(
    help="Run maintenance tasks (what the scheduler runs periodically).", no_args_is_help=True
)
SHORT_NAMES = [t.removeprefix("maintenance.") for t in TASKS]


@maintenance_app.command("run")
def run(
    tasks: Annotated[
        list[str] | None,
        typer.Argument(help=f"Any of {', '.join(SHORT_NAMES)}; default: all of them."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run maintenance tasks once, now, and wait for them. Exit 1 if one failed."""
    from ingest.cli.follow import wait_for_jobs
    from ingest.cli.watch import RunWatcher, say_interrupted

    with service_context() as ctx:
        jobs = actions.run_maintenance_now(
            ctx.store, ctx.settings, ctx.doorbell, tasks or list(TASKS)
        )
        job_ids = [j.id for j in jobs]
        queue_mode = ctx.settings.mode == "queue"
        handed_back: list[str] = []
        finished: list[Job] | None = None
        try:
            with RunWatcher(
                ctx, job_ids, err, lines=False, watch_workers=queue_mode, queue=Queue.MAINTENANCE
            ):
                finished = wait_for_jobs(ctx, job_ids, queue=Queue.MAINTENANCE)
        except (KeyboardInterrupt, RunInterrupted) as stop:
            if isinstance(stop, RunInterrupted):
                handed_back = stop.handed_back
            rerun = "`ingest maintenance run`"
            say_interrupted(ctx, err, jobs, handed_back, rerun=rerun)
    if finished is None:  # Ctrl-C
        if handed_back:
            exit_now(130)  # the threads of the handed-back attempts are not waited for
        raise typer.Exit(130)
    if as_json:
        print_json({"jobs": [job_view(j) for j in finished]})
    else:
        for job in finished:
            out.print(escape(_outcome_line(job)), highlight=False, soft_wrap=True)
    if any(j.status != JobStatus.SUCCEEDED for j in finished):
        raise typer.Exit(1)


def _outcome_line(job: Job) -> str:
    if job.status != JobStatus.SUCCEEDED:
        return f"{job.kind} {job.status}: {job.error_message or job.status}"
    return f"{job.kind} succeeded: {summary(job.result or {})}"


def summary(result: dict[str, Any]) -> str:
    """The figures of a maintenance result, in words: "ok yes, documents without chunks 0"."""
    parts = []
    for key, value in result.items():
        if key == "checked_at" or isinstance(value, list | dict):
            continue
        shown = ("yes" if value else "no") if isinstance(value, bool) else value
        parts.append(f"{key.replace('_', ' ')} {shown}")
    return ", ".join(parts) or "done"
