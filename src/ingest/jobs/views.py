"""The one job object every interface shows: CLI --json and the HTTP API alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ingest.store import Job


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def job_view(job: Job, *, include_traceback: bool = False) -> dict[str, Any]:
    error = None
    if job.error_type or job.error_message:
        error = {"type": job.error_type, "message": job.error_message}
        if include_traceback:
            error["traceback"] = job.error_traceback
    return {
        "job_id": job.id,
        "kind": job.kind,
        "queue": job.queue,
        "priority": job.priority,
        "status": job.status,
        "progress": job.progress,
        "current": job.progress_current,
        "total": job.progress_total,
        "stage": job.stage,
        "message": job.progress_message,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "cancel_requested": job.cancel_requested,
        "document_id": job.document_id,
        "idempotency_key": job.idempotency_key,
        "result": job.result,
        "error": error,
        "stages": job.stages,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "updated_at": iso(job.updated_at),
        "not_before": iso(job.not_before),
    }
