"""`ingest health schema|worker|scheduler`: exit 0 when healthy, 1 with the reason
on stderr when not. Light on purpose (one database connection, no model), for
container health checks and init containers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from ingest.cli.common import err, fail, out, run_settings
from ingest.errors import IngestError
from ingest.ingestion.maintenance import TASKS as MAINTENANCE_TASKS
from ingest.jobs.health import scheduler_problem, worker_problem
from ingest.settings import Settings
from ingest.store import Store

health_app = typer.Typer(
    help="Exit 0 when a part of the deployment is healthy (for health checks).",
    no_args_is_help=True,
)


@contextmanager
def _light_store() -> Iterator[tuple[Settings, Store]]:
    try:
        settings = run_settings()
        store = Store.from_settings(settings, light=True)
    except IngestError as exc:
        raise fail(str(exc)) from exc
    try:
        yield settings, store
    finally:
        store.close()


def _verdict(problem: str | None, healthy: str) -> None:
    if problem is not None:
        err.print(f"unhealthy: {problem}", highlight=False)
        raise typer.Exit(1)
    out.print(healthy, highlight=False)


def _schema_problem(store: Store) -> str | None:
    try:
        store.require_current_schema()
    except Exception as exc:  # out of date, or the database does not answer yet
        return str(exc) or type(exc).__name__
    return None


@health_app.command("schema")
def schema(
    wait: Annotated[
        float,
        typer.Option(min=0, help="Keep checking for this many seconds (an init container)."),
    ] = 0,
) -> None:
    """The database answers and its schema is current (`ingest migrate` has run)."""
    with _light_store() as (_, store):
        problem = _poll(lambda: _schema_problem(store), wait)
    _verdict(problem, "schema is current")


def _poll(check: Callable[[], str | None], wait: float, every: float = 2.0) -> str | None:
    deadline = time.monotonic() + wait
    while (problem := check()) is not None and time.monotonic() < deadline:
        err.print(f"waiting: {problem}", highlight=False)
        time.sleep(min(every, max(0.0, deadline - time.monotonic())))
    return problem


@health_app.command("worker")
def worker(
    hostname: Annotated[
        str | None, typer.Option(help="Host the worker runs on; default: this one.")
    ] = None,
) -> None:
    """A worker on this host (a container's hostname is its own) heartbeats."""
    host = hostname or socket.gethostname()
    with _light_store() as (settings, store):
        problem = worker_problem(store.workers, host, stale_after=settings.worker_stale_seconds)
    _verdict(problem, f"worker on {host} is live")


@health_app.command("scheduler")
def scheduler() -> None:
    """Every maintenance task has a job for this time slot or the last: some
    scheduler is ticking and the database answers."""
    with _light_store() as (settings, store):
        problem = scheduler_problem(
            store.jobs,
            MAINTENANCE_TASKS,
            interval=settings.maintenance_interval_seconds,
            now=time.time(),
        )
    _verdict(problem, "scheduler is ticking")
