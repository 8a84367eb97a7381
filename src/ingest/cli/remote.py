"""`ingest --server URL ...`: add, search, status and jobs through the HTTP API.

The same commands, output and `--json` as the local ones, but every call goes to an
`ingest serve` with INGEST_API_KEY (ingest.client), never to a database here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from ingest.cli.common import err, fail, out, print_json, run_settings
from ingest.errors import ClientError, IngestError
from ingest.ingestion.discovery import discover_files
from ingest.ingestion.results import FileResult, IngestReport
from ingest.models import HitOut, JobOut

if TYPE_CHECKING:
    from ingest.client import Client

# The root `--server` option of this invocation (the root callback runs first).
_server_option: str | None = None
# Files per upload request: well under the server's INGEST_MAX_FILES_PER_UPLOAD default.
UPLOAD_BATCH = 50


def set_server(server: str | None) -> None:
    """The root `--server` option, kept for the command that runs next."""
    global _server_option
    _server_option = server or None


def server_url() -> str | None:
    """`--server`, else INGEST_SERVER_URL, else None (work on the local database)."""
    return _server_option or run_settings().server_url


@contextmanager
def remote_client() -> Iterator[Client]:
    """A client of the server; any error talking to it is a clean exit 2."""
    from ingest.client import Client  # httpx: only for a server, not for local commands

    url = server_url()
    assert url, "only called with a server"
    key = run_settings().api_key
    if key is None:
        raise fail(f"INGEST_API_KEY is not set: the server {url} needs an API key")
    try:
        with Client(url, key.get_secret_value()) as client:
            yield client
    except ClientError as exc:
        raise fail(str(exc)) from exc


# --- ingest add ------------------------------------------------------------------


def add(
    paths: Sequence[Path],
    *,
    collection: str,
    metadata: dict[str, Any],
    sync: bool,
    no_wait: bool,
    as_json: bool,
) -> None:
    from ingest.cli.app import _print_report  # the local command's own words

    if sync:
        raise fail("--sync needs the database: it is not available with --server")
    try:
        files = discover_files(paths)
    except IngestError as exc:
        raise fail(str(exc)) from exc
    with remote_client() as client:
        job_ids = [
            queued.job_id
            for start in range(0, len(files), UPLOAD_BATCH)
            for queued in client.upload(
                files[start : start + UPLOAD_BATCH], collection=collection, metadata=metadata
            )
        ]
        if no_wait:
            _print_submitted([client.jobs.get(j) for j in job_ids], as_json)
            return
        report = report_from_jobs(client.wait(job_ids) if job_ids else [])
    if as_json:
        print_json(report.as_dict())
    else:
        for error in report.errors:
            err.print(f"[red]failed[/] {error['source']}: {error['reason']}")
        _print_report(report)
    if report.failed:
        raise typer.Exit(1)


def _print_submitted(jobs: list[JobOut], as_json: bool) -> None:
    if as_json:
        print_json({"jobs": [j.model_dump(mode="json") for j in jobs], "skipped": 0})
        return
    for job in jobs:
        out.print(job.job_id)
    err.print(f"{len(jobs)} job(s) queued, 0 file(s) unchanged")


def report_from_jobs(jobs: Sequence[JobOut]) -> IngestReport:
    report = IngestReport()
    for job in jobs:
        report.record(_file_result(job))
    return report


def _file_result(job: JobOut) -> FileResult:
    result = job.result or {}
    source = str(result.get("source") or job.job_id)
    if job.status == "succeeded":
        return FileResult(
            source,
            result.get("outcome", "added"),
            job.document_id or "",
            chunks=int(result.get("chunks", 0)),
            embedded=int(result.get("embedded", 0)),
        )
    reason = (job.error["message"] if job.error else None) or job.status
    if job.status != "failed":
        reason = f"job {job.status}: {reason}"
    return FileResult(source, "failed", job.document_id or "", reason=reason)


# --- ingest search ---------------------------------------------------------------


def search(
    query: str,
    *,
    k: int,
    collection: str | None,
    filters: dict[str, Any],
    mode: str,
    as_json: bool,
) -> None:
    with remote_client() as client:
        hits = client.search(query, k=k, collection=collection, filters=filters, mode=mode)
    if as_json:
        print_json({"results": [h.model_dump(mode="json") for h in hits]})
        return
    print_hits(hits)


def print_hits(hits: Sequence[HitOut]) -> None:
    if not hits:
        out.print("no results")
    for rank, hit in enumerate(hits, start=1):
        parts = (f"page {hit.page}" if hit.page else "", f"§ {hit.heading}" if hit.heading else "")
        where = " ".join(p for p in parts if p)
        out.print(  # as the local `ingest search` prints it (cli/app.py)
            f"[bold]{rank}.[/] {escape(hit.source)} [dim]{escape(where)} score {hit.score:.4f}[/]",
            soft_wrap=True,
        )
        snippet = " ".join(hit.text.split())
        out.print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}", highlight=False)


# --- ingest status ---------------------------------------------------------------


def status(as_json: bool) -> None:
    from ingest.cli.status import print_status

    with remote_client() as client:
        report = client.status().model_dump(mode="json")
    # Which store answered, as the local command says: here, the server's.
    report["database"] = f"the database of {server_url()}"
    if as_json:
        print_json(report)
        return
    print_status(out, report)


# --- ingest jobs -----------------------------------------------------------------


def jobs_list(statuses: list[str], kind: str | None, limit: int, as_json: bool) -> None:
    with remote_client() as client:
        jobs = client.jobs.list(status=statuses or None, kind=kind, limit=min(limit, 500))
    print_jobs(jobs, as_json)


def jobs_show(job_id: str, as_json: bool) -> None:
    with remote_client() as client:
        job = client.jobs.get(job_id)
    if as_json:
        print_jobs([job], True)
        return
    for key, value in job.model_dump(mode="json").items():
        if key != "stages":
            out.print(f"[bold]{key}[/]: {value}", highlight=False)
    for stage in job.stages:
        took = stage.ended_at - stage.started_at
        out.print(f"  stage {stage.stage}: {stage.current}/{stage.total} in {took:.2f} s")


def jobs_cancel(job_id: str, as_json: bool) -> None:
    with remote_client() as client:
        print_jobs([client.jobs.cancel(job_id)], as_json)


def jobs_retry(job_id: str, as_json: bool) -> None:
    with remote_client() as client:
        print_jobs([client.jobs.retry(job_id)], as_json)


def print_jobs(jobs: Sequence[JobOut], as_json: bool) -> None:
    if as_json:
        print_json({"jobs": [j.model_dump(mode="json") for j in jobs]})
        return
    if not jobs:
        out.print("no jobs")
        return
    table = Table("kind", "status", "progress", "attempt", "message / error")
    table.add_column("job_id", no_wrap=True, min_width=32)
    for job in jobs:
        detail = (job.error["message"] if job.error else None) or job.message or ""
        table.add_row(
            job.kind,
            job.status,
            f"{job.progress:.0%}",
            f"{job.attempt}/{job.max_attempts}",
            detail[:80],
            job.job_id,
        )
    out.print(table)
