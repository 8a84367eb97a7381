"""`ingest add | search | status | migrate`.

Human output goes to the terminal (a progress bar on a TTY); `--json` prints one
JSON object on stdout and nothing else there, for scripts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ingest.context import Context
from ingest.errors import IngestError
from ingest.jobs.ingestion import FileResult, IngestReport
from ingest.settings import load_settings
from ingest.store import Store

app = typer.Typer(
    name="ingest",
    help="Durable document ingestion and hybrid search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()


def main() -> None:
    app()


def _print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@contextmanager
def _context() -> Iterator[Context]:
    try:
        ctx = Context(load_settings())
    except IngestError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    try:
        yield ctx
    except IngestError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    finally:
        ctx.close()


def _parse_pairs(pairs: list[str] | None, option: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=option)
        parsed[key] = value
    return parsed


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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Ingest files: parse, chunk, embed and index them; unchanged files are skipped."""
    metadata = _parse_pairs(meta, "--meta")
    with _context() as ctx:
        show_bar = not as_json and err.is_terminal
        with _progress(show_bar) as bar:
            task = bar.add_task("scanning", total=None) if bar else None

            def started(path: Path, index: int, total: int) -> None:
                if bar is not None and task is not None:
                    bar.update(task, total=total, completed=index, description=path.name[:40])

            def done(result: FileResult) -> None:
                if bar is not None and task is not None:
                    bar.advance(task)
                if not as_json and result.outcome == "failed":
                    err.print(f"[red]failed[/] {result.source}: {result.reason}")

            report = ctx.ingestor.ingest_paths(
                paths,
                collection=collection,
                sync=sync,
                metadata=metadata,
                on_file_start=started,
                on_file_done=done,
            )
    if as_json:
        _print_json(report.as_dict())
    else:
        _print_report(report)
    if report.failed:
        raise typer.Exit(1)


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        yield bar


def _print_report(report: IngestReport) -> None:
    out.print(
        f"added {report.added}, updated {report.updated}, skipped {report.skipped}, "
        f"deleted {report.deleted}, failed {report.failed} "
        f"({report.chunks} chunks written, {report.embedded} embedded)"
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
    filters = _parse_pairs(filter_, "--filter")
    with _context() as ctx:
        hits = ctx.searcher.search(
            query,
            k=k,
            collection=collection,
            filters=filters,
            mode=mode,  # type: ignore[arg-type]
        )
    if as_json:
        _print_json({"results": [h.as_dict() for h in hits]})
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
        out.print(f"[bold]{rank}.[/] {hit.source} [dim]{where} score {hit.score:.4f}[/]")
        snippet = " ".join(hit.text.split())
        out.print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}", highlight=False)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Counts of documents (by status) and chunks."""
    with _context() as ctx:
        counts = ctx.store.counts()
    if as_json:
        _print_json(counts)
        return
    table = Table(show_header=False, box=None)
    table.add_row("documents", str(counts["documents"]))
    for name, n in sorted(counts["by_status"].items()):
        table.add_row(f"  {name}", str(n))
    table.add_row("chunks", str(counts["chunks"]))
    table.add_row("vectors", str(counts["vectors"]))
    table.add_row("collections", str(counts["collections"]))
    out.print(table)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (run once per deployment)."""
    settings = load_settings()
    store = Store.open(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    try:
        before, after = store.migrate()
    except IngestError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    finally:
        store.close()
    if before == after:
        out.print(f"schema already at revision {after}")
    else:
        out.print(f"schema migrated from {before or 'empty'} to {after}")
