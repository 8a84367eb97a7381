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


class _Superseded(Exception):
    """A newer submission of this document has already written its outcome."""

    def __init__(self, newer_job_id: str) -> None:
        super().__init__(newer_job_id)
        self.newer_job_id = newer_job_id


def run_ingest(
    services: Context, execution: JobExecution, parse: ParseFunction | None
) -> dict[str, Any] | None:
    job = execution.claim.job
    payload = job.payload
    path = resolve_payload_path(payload, services.settings.incoming_dir)

    def commit(conn: sa.Connection, result: FileResult) -> None:
        # Two submissions of one document can run at once on two workers: the
        # older must not overwrite what the newer wrote (raising rolls back).
        if result.outcome != "skipped" and (newer := services.ledger.newer_outcome(conn, job)):
            raise _Superseded(newer)
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
    try:
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
    except _Superseded as superseded:
        with services.ledger.write() as conn:
            # Nothing of this attempt was written: for `ingest add`, a skipped file.
            result = {
                "source": payload["source_uri"],
                "outcome": "skipped",
                "document_id": job.document_id,
                "chunks": 0,
                "embedded": 0,
                "superseded_by": superseded.newer_job_id,
            }
            execution.succeed_in(conn, result, document_id=job.document_id)
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
