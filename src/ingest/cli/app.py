"""`ingest add | search | status | migrate | backup`.

Human output goes to the terminal (a progress bar on a TTY); `--json` prints one
JSON object on stdout and nothing else there, for scripts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ingest.cli import remote
from ingest.cli.common import (
    database_label,
    empty_database_note,
    err,
    exit_now,
    fail,
    out,
    parse_pairs,
    print_json,
    run_settings,
    say_if_created,
    service_context,
    sqlite_file_to_create,
    use_settings,
)
from ingest.cli.health_cmd import health_app
from ingest.cli.jobs_cmd import jobs_app, register_processes
from ingest.cli.maintenance_cmd import maintenance_app
from ingest.cli.serve_cmd import keys_app, serve
from ingest.cli.sources_cmd import sources_app
from ingest.errors import ConfigError, IngestError, RunInterrupted
from ingest.ingestion.results import IngestReport
from ingest.jobs.views import job_view
from ingest.logs import configure_logging
from ingest.models import RESERVED_METADATA_KEYS, HitOut
from ingest.settings import load_settings
from ingest.store import Job, Store
from ingest.vocabulary import MAX_PRIORITY, MIN_PRIORITY, Queue

if TYPE_CHECKING:
    from ingest.ingestion.plan import IngestionPlan

app = typer.Typer(
    name="ingest",
    help="Durable document ingestion and hybrid search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="URL of an `ingest serve`: add, search, status and jobs go through its "
            "API with INGEST_API_KEY (default: INGEST_SERVER_URL, else the local database).",
        ),
    ] = None,
) -> None:
    """Durable document ingestion and hybrid search."""
    remote.set_server(server)


@app.command()
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    collection: Annotated[str, typer.Option(help="Collection to add to.")] = "default",
    sync: Annotated[
        bool, typer.Option("--sync", help="Delete documents under PATHS whose file is gone.")
    ] = False,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="KEY=VALUE metadata for every document.")
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Submit the jobs and print their ids.")
    ] = False,
    priority: Annotated[
        int,
        typer.Option(
            min=MIN_PRIORITY,
            max=MAX_PRIORITY,
            help="Job priority: higher runs first, ahead of older jobs of lower priority.",
        ),
    ] = 0,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress bar or lines; the summary and failures still print."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Ingest files through the job ledger; unchanged files are skipped at once.

    Inline mode (the default) runs the jobs in this process; queue mode stages the
    files in INGEST_INCOMING_DIR for the workers and follows the jobs. Files rejected
    before and unchanged since are known failures: listed, not tried again. Exit 1
    when a document failed in this run, else 0."""
    from ingest.cli.follow import finish_add, plan_ingestion, submit_plan
    from ingest.cli.watch import live_workers, no_worker_message, say_interrupted

    metadata = parse_pairs(meta, "--meta")
    if reserved := sorted(RESERVED_METADATA_KEYS & metadata.keys()):
        raise typer.BadParameter(
            f"{', '.join(reserved)} is recorded by ingest itself and cannot be set",
            param_hint="--meta",
        )
    if remote.server_url():
        if priority:
            raise fail("--priority is not available with --server yet")
        remote.add(
            paths,
            collection=collection,
            metadata=metadata,
            sync=sync,
            no_wait=no_wait,
            as_json=as_json,
        )
        return
    with service_context() as ctx:
        plan = plan_ingestion(ctx, paths, collection=collection, metadata=metadata)
        jobs = submit_plan(ctx, plan, collection=collection, metadata=metadata, priority=priority)
        if no_wait:
            _print_submitted(jobs, plan, as_json)
            if jobs and ctx.settings.mode == "queue" and not live_workers(ctx, Queue.INGEST):
                message = no_worker_message(len(jobs), Queue.INGEST)
                err.print(message, highlight=False, soft_wrap=True)
            return
        # A bar on a terminal; without one (a pipe, a log file), a line per document.
        terminal = err.is_terminal
        handed_back: list[str] = []
        try:
            report = finish_add(
                ctx,
                plan,
                jobs,
                paths,
                collection=collection,
                sync=sync,
                show_bar=terminal and not as_json and not quiet,
                show_lines=not terminal and not quiet,
                warn_no_worker=True,
            )
        except (KeyboardInterrupt, RunInterrupted) as stop:
            if isinstance(stop, RunInterrupted):
                handed_back = stop.handed_back
            say_interrupted(ctx, err, jobs, handed_back, rerun="`ingest add` with the same paths")
            report = None
    if report is None:  # Ctrl-C
        if handed_back:
            exit_now(130)  # the threads of the handed-back attempts are not waited for
        raise typer.Exit(130)
    if as_json:
        print_json(report.as_dict())
    else:
        _print_known_failures(report.known_failures)
        for error in report.errors:
            err.print(
                f"[red]failed[/] {escape(error['source'])}: {escape(error['reason'])}",
                highlight=False,
                soft_wrap=True,
            )
        _print_report(report)
    # Exit 1 only for failures new in this run: a re-run over files rejected before
    # (and unchanged since) succeeds, and still lists them.
    if report.failed:
        raise typer.Exit(1)


def _print_submitted(jobs: list[Job], plan: IngestionPlan, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "jobs": [job_view(j) for j in jobs],
                "skipped": len(plan.skipped),
                "known_failures": plan.known_failures,
            }
        )
        return
    for job in jobs:
        out.print(job.id)
    _print_known_failures(plan.known_failures)
    err.print(
        f"{len(jobs)} job(s) queued, {len(plan.skipped)} file(s) unchanged, "
        f"{len(plan.known_failures)} known failure(s)",
        highlight=False,
    )


_KNOWN_FAILURES_SHOWN = 10


def _print_known_failures(known: list[dict[str, str]]) -> None:
    """One line each (the first few): rejected before, not tried again until changed."""
    for failure in known[:_KNOWN_FAILURES_SHOWN]:
        err.print(
            f"[yellow]known failure[/] {escape(failure['source'])}: {escape(failure['reason'])}",
            highlight=False,
            soft_wrap=True,
        )
    if len(known) > _KNOWN_FAILURES_SHOWN:
        more = len(known) - _KNOWN_FAILURES_SHOWN
        err.print(f"... and {more} more known failure(s) (--json lists them all)")


def _print_report(report: IngestReport) -> None:
    out.print(
        f"added {report.added}, updated {report.updated}, skipped {report.skipped}, "
        f"deleted {report.deleted}, failed {report.failed}, "
        f"known failures {len(report.known_failures)} "
        f"({report.chunks} chunks written, {report.embedded} embedded)",
        soft_wrap=True,  # one line in a log file too, not wrapped at 80 columns
    )


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="Number of hits.")] = 10,
    collection: Annotated[str | None, typer.Option(help="Only this collection.")] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help="KEY=VALUE: only documents with this metadata."),
    ] = None,
    mode: Annotated[str, typer.Option(help="hybrid, vector or keyword.")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Hybrid (vector + keyword) search over what has been ingested."""
    if mode not in ("hybrid", "vector", "keyword"):
        raise typer.BadParameter("must be hybrid, vector or keyword", param_hint="--mode")
    filters = parse_pairs(filter_, "--filter")
    if remote.server_url():
        remote.search(
            query, k=k, collection=collection, filters=filters, mode=mode, as_json=as_json
        )
        return
    with service_context() as ctx:
        # An empty database answers nothing: say so rather than load the model to
        # find it out, and name the database (run from another folder, it is not
        # the one the user filled).
        empty = ctx.store.counts()["documents"] == 0
        hits = (
            []
            if empty
            else ctx.searcher.search(
                query,
                k=k,
                collection=collection,
                filters=filters,
                mode=mode,  # type: ignore[arg-type]
            )
        )
        if empty:
            err.print(empty_database_note(ctx.settings), highlight=False, soft_wrap=True)
    if as_json:
        print_json({"results": [HitOut.from_hit(h).model_dump(mode="json") for h in hits]})
        return
    if not hits:
        out.print("no results")
    for rank, hit in enumerate(hits, start=1):
        where = " ".join(
            part
            for part in (
                f"page {hit.page}" if hit.page else "",
                f"§ {hit.heading}" if hit.heading else "",
            )
            if part
        )
        # Escaped: a document's "[text](link)" is not Rich markup. Never wrapped: a
        # source path broken across lines cannot be copied (or found by grep).
        out.print(
            f"[bold]{rank}.[/] {escape(hit.source)} [dim]{escape(where)} score {hit.score:.4f}[/]",
            soft_wrap=True,
        )
        snippet = " ".join(hit.text.split())
        cut = f"{snippet[:300]}{'…' if len(snippet) > 300 else ''}"
        out.print(f"   {escape(cut)}", highlight=False)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Documents (by status), chunks, jobs (by queue and status), workers, integrity."""
    from ingest.cli.status import print_status, status_report

    if remote.server_url():
        remote.status(as_json)
        return
    with service_context() as ctx:
        report = status_report(ctx)
        report["database"] = database_label(ctx.settings)
        note = empty_database_note(ctx.settings) if report["documents"] == 0 else None
    if as_json:
        print_json(report)
        return
    print_status(out, report)
    if note:
        out.print(note, highlight=False, soft_wrap=True)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (run once per deployment)."""
    settings = run_settings()
    try:
        new_file = sqlite_file_to_create(settings)
    except IngestError as exc:
        raise fail(str(exc)) from exc
    store = Store.from_settings(settings, light=True)
    try:
        before, after = store.migrate()
    except IngestError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    finally:
        store.close()
    say_if_created(settings, new_file)
    if before == after:
        out.print(f"schema already at revision {after}")
    else:
        out.print(f"schema migrated from {before or 'empty'} to {after}")


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="The new file to write the copy to.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Copy the SQLite database to PATH while it is in use (a consistent snapshot)."""
    settings = run_settings()
    if sqlite_file_to_create(settings) is not None:
        raise fail(f"no database to back up: {database_label(settings)} does not exist")
    store = Store.from_settings(settings, light=True)
    try:
        size = store.backup_to(path)
    except IngestError as exc:
        raise fail(str(exc)) from exc
    finally:
        store.close()
    report = {"database": database_label(settings), "backup": str(path.resolve()), "bytes": size}
    if as_json:
        print_json(report)
        return
    out.print(
        f"backed up {report['database']} to {report['backup']} ({size:,} bytes)",
        highlight=False,
        soft_wrap=True,
    )


def main() -> None:
    """The `ingest` command: settings are read once, here, and handed to every command."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)  # one line, whatever the terminal width
        raise SystemExit(2) from None
    configure_logging(settings)
    use_settings(settings)
    app()


app.add_typer(jobs_app, name="jobs")
app.add_typer(keys_app, name="keys")
app.add_typer(health_app, name="health")
app.add_typer(maintenance_app, name="maintenance")
app.add_typer(sources_app, name="sources")
app.command()(serve)
register_processes(app)
