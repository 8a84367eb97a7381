"""/api/v1/jobs: submit by path, inspect, cancel, retry, and follow as Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from ingest.api.problems import ApiProblem
from ingest.api.routes.documents import ensure_capacity
from ingest.api.security import Admin, Editor, Principal, Viewer
from ingest.api.services import Services, get_services
from ingest.errors import FileNotInIncoming, PathNotAllowed
from ingest.ingestion import actions
from ingest.jobs.views import job_view
from ingest.store import Job
from ingest.vocabulary import MAX_PRIORITY, MIN_PRIORITY, JobStatus

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
ServicesDep = Annotated[Services, Depends(get_services)]
STATUS_PATTERN = "^(queued|running|succeeded|failed|cancelled|dead)$"
_EVENT_POLL_S = 0.2


class IngestRequest(BaseModel):
    document_paths: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        min_length=1, max_length=1000, description="Paths relative to INGEST_INCOMING_DIR"
    )
    collection: str = Field(default="default", min_length=1, max_length=200)
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)
    priority: int = Field(
        default=0, ge=MIN_PRIORITY, le=MAX_PRIORITY, description="Higher runs first"
    )


class JobAccepted(BaseModel):
    job_id: str
    status: str
    jobs: list[dict[str, Any]]


class JobPage(BaseModel):
    jobs: list[dict[str, Any]]
    limit: int
    offset: int


def _resolve_in_incoming(incoming: Path, relative: str) -> Path:
    """Never trust a client path: it must name a file inside INGEST_INCOMING_DIR."""
    root = incoming.resolve()
    candidate = Path(relative)
    if candidate.is_absolute() or "\x00" in relative:
        raise PathNotAllowed(f"{relative!r}: paths must be relative to INGEST_INCOMING_DIR")
    resolved = (root / candidate).resolve()
    if root not in resolved.parents:
        raise PathNotAllowed(f"{relative!r} resolves outside INGEST_INCOMING_DIR")
    if not resolved.is_file():
        raise FileNotInIncoming(f"{relative!r} is not a file in INGEST_INCOMING_DIR")
    return resolved


@router.post(
    "/ingest",
    status_code=202,
    response_model=JobAccepted,
    summary="Ingest files already in INGEST_INCOMING_DIR",
)
def submit_ingest(
    services: ServicesDep, principal: Editor, body: IngestRequest, request: Request
) -> JobAccepted:
    incoming = services.ctx.settings.incoming_dir
    paths = [_resolve_in_incoming(incoming, p) for p in body.document_paths]
    ensure_capacity(services)
    jobs = [
        services.ctx.submitter.submit_incoming(
            path, collection=body.collection, metadata=body.metadata, priority=body.priority
        )
        for path in paths
    ]
    request.state.audit_target = ",".join(j.id for j in jobs)
    return JobAccepted(job_id=jobs[0].id, status=jobs[0].status, jobs=[job_view(j) for j in jobs])


@router.get("", response_model=JobPage, summary="List jobs")
def list_jobs(
    services: ServicesDep,
    principal: Viewer,
    status: Annotated[list[str] | None, Query(description="Repeatable")] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    queue: Annotated[str | None, Query(max_length=64)] = None,
    document_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JobPage:
    for s in status or []:
        if s not in ("queued", "running", "succeeded", "failed", "cancelled", "dead"):
            raise ApiProblem(
                422,
                "validation-error",
                "Request validation failed",
                f"status: unknown status {s!r}",
                errors=[{"field": "status", "location": "query", "message": "unknown status"}],
            )
    jobs = services.ctx.ledger.list_jobs(
        statuses=[JobStatus(s) for s in status or []],
        kind=kind,
        queue=queue,
        document_id=document_id,
        limit=limit,
        offset=offset,
    )
    return JobPage(jobs=[job_view(j) for j in jobs], limit=limit, offset=offset)


def _job_or_404(services: Services, job_id: str) -> Job:
    return actions.get_job(services.ctx.store, job_id)


@router.get("/{job_id}", summary="One job")
def get_job(services: ServicesDep, principal: Viewer, job_id: str) -> dict[str, Any]:
    job = _job_or_404(services, job_id)
    return job_view(job, include_traceback=principal.role == "admin")


@router.delete("/{job_id}", summary="Cancel a job")
def cancel_job(services: ServicesDep, principal: Editor, job_id: str) -> dict[str, Any]:
    return job_view(actions.cancel_job(services.ctx.store, job_id))


@router.post("/{job_id}/retry", summary="Re-queue a failed, dead or cancelled job")
def retry_job(services: ServicesDep, principal: Editor, job_id: str) -> dict[str, Any]:
    ctx = services.ctx
    return job_view(actions.retry_job(ctx.store, ctx.settings, ctx.doorbell, job_id))


def _fingerprint(job: Job) -> tuple[Any, ...]:
    return (
        job.status,
        job.attempt,
        job.stage,
        job.progress,
        job.progress_message,
        job.cancel_requested,
    )


@router.get("/{job_id}/events", summary="Follow a job: Server-Sent Events until it ends")
async def job_events(
    services: ServicesDep, principal: Viewer, job_id: str, request: Request
) -> EventSourceResponse:
    first = await anyio.to_thread.run_sync(_job_or_404, services, job_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        job: Job | None = first
        seen: tuple[Any, ...] | None = None
        while job is not None:
            if _fingerprint(job) != seen:
                seen = _fingerprint(job)
                yield ServerSentEvent(
                    data=json.dumps(job_view(job)), event="job", id=str(job.updated_at)
                )
            if job.is_terminal:
                yield ServerSentEvent(
                    data=json.dumps({"job_id": job.id, "status": job.status}), event="end"
                )
                return
            if await request.is_disconnected():
                return
            await anyio.sleep(_EVENT_POLL_S)
            job = await anyio.to_thread.run_sync(services.ctx.ledger.get, job_id)

    return EventSourceResponse(events(), ping=int(services.ctx.settings.sse_ping_seconds))


__all__ = ["Admin", "Principal", "router"]
