"""Job kinds and what running each one means."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ingest.errors import DocumentRejected
from ingest.jobs.execution import JobExecution
from ingest.jobs.ingestion import FileResult, ParseFunction

if TYPE_CHECKING:
    from ingest.context import Context

INGEST = "ingest"
NOOP = "noop"

Handler = Callable[["Context", JobExecution, ParseFunction | None], dict[str, Any] | None]


def run_ingest(
    services: Context, execution: JobExecution, parse: ParseFunction | None
) -> dict[str, Any] | None:
    payload = execution.claim.job.payload
    path = resolve_payload_path(payload, services.settings.incoming_dir)

    def commit(conn: sa.Connection, result: FileResult) -> None:
        outcome = {k: v for k, v in asdict(result).items() if k != "reason"}
        if result.outcome == "failed":
            execution.fail_in(
                conn,
                error_type="rejected",
                message=result.reason or "the document was rejected",
                result=outcome,
            )
        else:
            execution.succeed_in(conn, outcome, document_id=result.document_id)

    execution.checkpoint()
    services.ingestor.ingest_file(
        path,
        collection=payload["collection"],
        metadata=payload.get("metadata") or {},
        source_uri=payload["source_uri"],
        filename=payload.get("filename"),
        on_progress=execution.progress,
        parse=parse,
        hook=commit,
    )
    return None


def resolve_payload_path(payload: dict[str, Any], incoming_dir: Path) -> Path:
    """Staged files are stored relative to INGEST_INCOMING_DIR, so each process
    resolves them against its own mount of the shared folder."""
    if "staged" in payload:
        root = incoming_dir.resolve()
        path: Path = (root / str(payload["staged"])).resolve()
        if root not in path.parents:
            raise DocumentRejected("staged file path escapes INGEST_INCOMING_DIR")
        return path
    return Path(str(payload["path"]))


def run_noop(
    services: Context, execution: JobExecution, parse: ParseFunction | None
) -> dict[str, Any] | None:
    execution.checkpoint()
    return {"ok": True}


def handlers() -> dict[str, Handler]:
    from ingest.jobs import maintenance

    return {INGEST: run_ingest, NOOP: run_noop, **maintenance.HANDLERS}
