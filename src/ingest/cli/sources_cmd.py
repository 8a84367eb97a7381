"""`ingest sources add|list|show|sync|remove`: folders and buckets kept in sync.

A sync is a ledger job on the `sources` queue: the scheduler queues one per source
per period. Inline mode runs a sync here, with the ingest jobs it queues, before
the command returns; queue mode waits for the sync job alone (the workers ingest).
With `--server` (INGEST_SERVER_URL) the commands go to the HTTP API instead, with
the same output: `add` and `sync` then wait for the sync job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ingest.cli import remote
from ingest.cli.common import audited, err, out, print_json, service_context
from ingest.ingestion import sources
from ingest.models import JobOut, SourceOut
from ingest.store import Job
from ingest.vocabulary import TERMINAL, JobStatus, Queue

if TYPE_CHECKING:
    from ingest.context import Context

sources_app = typer.Typer(
    help="Folders and s3:// buckets synced on a period: new and changed files are "
    "ingested, documents of deleted files removed.",
    no_args_is_help=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_REPORT_KEYS = ("listed", "submitted", "unchanged", "deleted", "failed")


@sources_app.command("add")
def add(
    location: Annotated[str, typer.Argument(help="A folder, or s3://bucket/prefix.")],
    collection: Annotated[str, typer.Option(help="Collection its documents go to.")] = "default",
    every: Annotated[
        str, typer.Option(help="Sync period: 30s, 15m, 1h, 1d (at least 10 s).")
    ] = sources.DEFAULT_EVERY,
    include: Annotated[
        list[str] | None,
        typer.Option(help="Only files matching this glob (repeatable): *.md, reports/*"),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Skip files matching this glob (repeatable).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a synced source and queue its first sync (inline mode: run it now)."""
    if remote.server_url():
        with remote.remote_client() as client:
            added = client.sources.add(
                location, collection=collection, every=every, include=include, exclude=exclude
            )
            [job_out] = client.wait([added.job.job_id])
            source_out = client.sources.get(added.source.source_id)
        _print_outcome(source_out, job_out, as_json)
        _exit_if_failed(job_out)
        return
    with service_context() as ctx:
        with audited(ctx, "sources add", location):
            source, job = sources.add_source(
                ctx.store,
                ctx.settings,
                ctx.doorbell,
                location,
                collection=collection,
                every=every,
                include=include or [],
                exclude=exclude or [],
            )
        if ctx.settings.mode == "inline":
            job = _run_sync(ctx, job)
            source = sources.get_source(ctx.store, source.id)
        job_out = JobOut.from_job(job)
        _print_outcome(SourceOut.from_record(source), job_out, as_json)
    _exit_if_failed(job_out)


@sources_app.command("list")
def list_sources(as_json: JsonOption = False) -> None:
    """Every synced source with how its last sync ended."""
    if remote.server_url():
        with remote.remote_client() as client:
            found = client.sources.list()
    else:
        with service_context() as ctx:
            found = [SourceOut.from_record(s) for s in ctx.store.sources.list()]
    if as_json:
        print_json({"sources": [s.model_dump(mode="json") for s in found]})
        return
    if not found:
        out.print("no sources: `ingest sources add PATH|s3://bucket/prefix` adds one")
        return
    table = Table("location", "collection", "every", "last sync")
    table.add_column("source_id", no_wrap=True, min_width=32)
    for s in found:
        table.add_row(
            escape(s.location),
            escape(s.collection),
            _period(s.interval_seconds),
            escape(_last_sync_text(s)[:80]),
            s.source_id,
        )
    out.print(table)


@sources_app.command()
def show(source_id: str, as_json: JsonOption = False) -> None:
    """One source: its settings and its last sync report."""
    if remote.server_url():
        with remote.remote_client() as client:
            source = client.sources.get(source_id)
    else:
        with service_context() as ctx:
            source = SourceOut.from_record(sources.get_source(ctx.store, source_id))
    if as_json:
        print_json(source.model_dump(mode="json"))
        return
    for key, value in source.model_dump(mode="json", exclude={"last_sync"}).items():
        out.print(f"[bold]{key}[/]: {escape(str(value))}", highlight=False, soft_wrap=True)
    out.print(
        f"[bold]last sync[/]: {escape(_last_sync_text(source))}", highlight=False, soft_wrap=True
    )
    last = source.last_sync
    if last is not None:
        for key, value in (("job_id", last.job_id), ("started_at", last.started_at)):
            out.print(f"  {key}: {value}", highlight=False)
        out.print(f"  finished_at: {last.finished_at}", highlight=False)
        _print_errors((last.report or {}).get("errors", []))


@sources_app.command()
def sync(source_id: str, as_json: JsonOption = False) -> None:
    """Sync the source now and wait for it; exit 1 if it failed."""
    if remote.server_url():
        with remote.remote_client() as client:
            [job_out] = client.wait([client.sources.sync(source_id).job_id])
            source_out = client.sources.get(source_id)
        _print_outcome(source_out, job_out, as_json)
        _exit_if_failed(job_out)
        return
    with service_context() as ctx:
        with audited(ctx, "sources sync", source_id):
            job = sources.sync_now(ctx.store, ctx.settings, ctx.doorbell, source_id)
        job_out = JobOut.from_job(_run_sync(ctx, job))
        source_out = SourceOut.from_record(sources.get_source(ctx.store, source_id))
        _print_outcome(source_out, job_out, as_json)
    _exit_if_failed(job_out)


@sources_app.command()
def remove(source_id: str, as_json: JsonOption = False) -> None:
    """Stop syncing the source. Its documents stay: delete them as any other."""
    if remote.server_url():
        with remote.remote_client() as client:
            source = client.sources.get(source_id)
            client.sources.remove(source_id)
    else:
        with service_context() as ctx, audited(ctx, "sources remove", source_id):
            source = SourceOut.from_record(sources.get_source(ctx.store, source_id))
            sources.remove_source(ctx.store, source_id)
    if as_json:
        print_json({"removed": source.model_dump(mode="json")})
    else:
        out.print(
            f"removed source {source_id} ({escape(source.location)}); its documents stay",
            soft_wrap=True,
        )


def _run_sync(ctx: Context, job: Job) -> Job:
    """Wait for the sync job (inline mode runs it here); inline, also run the ingest
    jobs it queued, so its documents are searchable when the command returns."""
    from ingest.cli.follow import follow_jobs, wait_for_jobs
    from ingest.cli.watch import RunWatcher

    queue_mode = ctx.settings.mode == "queue"
    with RunWatcher(ctx, [job.id], err, lines=False, watch_workers=queue_mode, queue=Queue.SOURCES):
        [finished] = wait_for_jobs(ctx, [job.id], queue=Queue.SOURCES)
    submitted = (finished.result or {}).get("job_ids") or []
    if not queue_mode and submitted:
        follow_jobs(ctx, submitted, show_bar=err.is_terminal)
    return finished


def _print_outcome(source: SourceOut, job: JobOut, as_json: bool) -> None:
    if as_json:
        print_json({"source": source.model_dump(mode="json"), "job": job.model_dump(mode="json")})
        return
    out.print(
        f"source {source.source_id}: {escape(source.location)} -> {escape(source.collection)}",
        soft_wrap=True,
    )
    if job.status not in TERMINAL:
        out.print(
            f"sync job {job.job_id} queued; `ingest sources show {source.source_id}` "
            "for its report",
            soft_wrap=True,
        )
        return
    if job.status != JobStatus.SUCCEEDED:
        reason = (job.error["message"] if job.error else None) or ""
        out.print(f"sync {job.status}: {escape(reason)}", highlight=False, soft_wrap=True)
        return
    out.print(_summary(job.result or {}), highlight=False, soft_wrap=True)
    _print_errors((job.result or {}).get("errors", []))


def _print_errors(errors: list[dict[str, str]]) -> None:
    for error in errors:
        line = f"  failed {escape(error['source'])}: {escape(error['reason'])}"
        out.print(line, highlight=False, soft_wrap=True)


def _exit_if_failed(job: JobOut) -> None:
    if job.status in TERMINAL and job.status != JobStatus.SUCCEEDED:
        raise typer.Exit(1)


def _summary(report: dict[str, Any]) -> str:
    return ", ".join(f"{key} {report.get(key, 0)}" for key in _REPORT_KEYS)


def _last_sync_text(source: SourceOut) -> str:
    last = source.last_sync
    if last is None:
        return "never synced"
    if last.error:
        return f"{last.status}: {last.error}"
    return f"{last.status}: {_summary(last.report or {})}"


def _period(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
