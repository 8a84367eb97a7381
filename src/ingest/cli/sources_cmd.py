"""`ingest sources add|list|show|sync|remove`: folders and buckets kept in sync.

A sync is a ledger job on the `sources` queue: the scheduler queues one per source
per period. Inline mode runs a sync here, with the ingest jobs it queues, before
the command returns; queue mode waits for the sync job alone (the workers ingest)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ingest.cli.common import audited, err, out, print_json, service_context
from ingest.ingestion import sources
from ingest.models import JobOut, SourceOut
from ingest.store import Job
from ingest.store.sources import SourceRecord
from ingest.vocabulary import JobStatus, Queue

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
        _print_outcome(source, job, as_json)
    _exit_if_failed(job)


@sources_app.command("list")
def list_sources(as_json: JsonOption = False) -> None:
    """Every synced source with how its last sync ended."""
    with service_context() as ctx:
        found = ctx.store.sources.list()
    if as_json:
        print_json({"sources": [_source_json(s) for s in found]})
        return
    if not found:
        out.print("no sources: `ingest sources add PATH|s3://bucket/prefix` adds one")
        return
    table = Table("location", "collection", "every", "last sync", "report / error")
    table.add_column("source_id", no_wrap=True, min_width=32)
    for s in found:
        table.add_row(
            escape(s.location),
            escape(s.collection),
            _period(s.interval_seconds),
            s.last_sync_status or "never",
            escape(_last_sync_text(s)[:80]),
            s.id,
        )
    out.print(table)


@sources_app.command()
def show(source_id: str, as_json: JsonOption = False) -> None:
    """One source: its settings and its last sync report."""
    with service_context() as ctx:
        source = sources.get_source(ctx.store, source_id)
    if as_json:
        print_json(_source_json(source))
        return
    view = _source_json(source)
    last = view.pop("last_sync") or {}
    for key, value in view.items():
        out.print(f"[bold]{key}[/]: {escape(str(value))}", highlight=False, soft_wrap=True)
    out.print(
        f"[bold]last sync[/]: {escape(_last_sync_text(source))}", highlight=False, soft_wrap=True
    )
    for key in ("job_id", "started_at", "finished_at"):
        if last.get(key):
            out.print(f"  {key}: {last[key]}", highlight=False)
    for error in (source.last_sync_report or {}).get("errors", []):
        out.print(f"  failed {escape(error['source'])}: {escape(error['reason'])}")


@sources_app.command()
def sync(source_id: str, as_json: JsonOption = False) -> None:
    """Sync the source now and wait for it; exit 1 if it failed."""
    with service_context() as ctx:
        with audited(ctx, "sources sync", source_id):
            job = sources.sync_now(ctx.store, ctx.settings, ctx.doorbell, source_id)
        job = _run_sync(ctx, job)
        source = sources.get_source(ctx.store, source_id)
        _print_outcome(source, job, as_json)
    _exit_if_failed(job)


@sources_app.command()
def remove(source_id: str, as_json: JsonOption = False) -> None:
    """Stop syncing the source. Its documents stay: delete them as any other."""
    with service_context() as ctx, audited(ctx, "sources remove", source_id):
        source = sources.get_source(ctx.store, source_id)
        sources.remove_source(ctx.store, source_id)
    if as_json:
        print_json({"removed": _source_json(source)})
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


def _print_outcome(source: SourceRecord, job: Job, as_json: bool) -> None:
    if as_json:
        job_json = JobOut.from_job(job).model_dump(mode="json")
        print_json({"source": _source_json(source), "job": job_json})
        return
    out.print(
        f"source {source.id}: {escape(source.location)} -> {escape(source.collection)}",
        soft_wrap=True,
    )
    if not job.is_terminal:
        out.print(
            f"sync job {job.id} queued; `ingest sources show {source.id}` for its report",
            soft_wrap=True,
        )
        return
    if job.status != JobStatus.SUCCEEDED:
        out.print(
            f"sync {job.status}: {escape(job.error_message or '')}", highlight=False, soft_wrap=True
        )
        return
    out.print(_summary(job.result or {}), highlight=False, soft_wrap=True)
    for error in (job.result or {}).get("errors", []):
        out.print(f"  failed {escape(error['source'])}: {escape(error['reason'])}", soft_wrap=True)


def _exit_if_failed(job: Job) -> None:
    if job.is_terminal and job.status != JobStatus.SUCCEEDED:
        raise typer.Exit(1)


def _summary(report: dict[str, Any]) -> str:
    return ", ".join(f"{key} {report.get(key, 0)}" for key in _REPORT_KEYS)


def _last_sync_text(source: SourceRecord) -> str:
    if source.last_sync_status is None:
        return "never synced"
    if source.last_sync_error:
        return f"{source.last_sync_status}: {source.last_sync_error}"
    return f"{source.last_sync_status}: {_summary(source.last_sync_report or {})}"


def _period(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _source_json(source: SourceRecord) -> dict[str, Any]:
    return SourceOut.from_record(source).model_dump(mode="json")
