"""/api/v1/jobs: submit by path, inspect, cancel, retry, and follow as Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path as FsPath
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from ingest.api.problems import problem_responses
from ingest.api.routes.documents import ensure_capacity
from ingest.api.security import Admin, Editor, Principal, Viewer
from ingest.api.services import Services, get_services
from ingest.errors import (
    IncomingFileNotFound,
    PathNotAllowed,
)
from ingest.ingestion import actions
from ingest.models import (
    NO_NUL,
    IngestRequest,
    JobAccepted,
    JobOut,
    JobPage,
    check_metadata,
)
from ingest.store import Job
from ingest.vocabulary import JobStatus

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
ServicesDep = Annotated[Services, Depends(get_services)]
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL)]
_EVENT_POLL_S = 0.2


def _resolve_in_incoming(incoming: FsPath, relative: str) -> FsPath:
    """Never trust a client path: it must name a file inside INGEST_INCOMING_DIR."""
    root = incoming.resolve()
    candidate = FsPath(relative)
    if candidate.is_absolute() or "\x00" in relative:
        raise PathNotAllowed(f"{relative!r}: paths must be relative to INGEST_INCOMING_DIR")
    try:
        resolved = (root / candidate).resolve()
        inside = root in resolved.parents
        is_file = inside and resolved.is_file()
    except (OSError, RuntimeError) as exc:
        # A component longer than the file system allows, a symlink loop...
        raise IncomingFileNotFound(
            f"{relative!r} is not a file in INGEST_INCOMING_DIR ({exc.__class__.__name__})"
        ) from None
    if not inside:
        raise PathNotAllowed(f"{relative!r} resolves outside INGEST_INCOMING_DIR")
    if not is_file:
        raise IncomingFileNotFound(f"{relative!r} is not a file in INGEST_INCOMING_DIR")
    return resolved


@router.post(
    "/ingest",
    status_code=202,
    response_model=JobAccepted,
    summary="Ingest files already in INGEST_INCOMING_DIR",
    responses=problem_responses(400, 401, 403, 404, 413, 422, 429, 503),
)
def submit_ingest(
    services: ServicesDep, principal: Editor, body: IngestRequest, request: Request
) -> JobAccepted:
    incoming = services.ctx.settings.incoming_dir
    metadata = check_metadata(dict(body.metadata))
    paths = [_resolve_in_incoming(incoming, p) for p in body.document_paths]
    ensure_capacity(services)
    jobs = [
        services.ctx.submitter.submit_incoming(
            path, collection=body.collection, metadata=metadata, priority=body.priority
        )
        for path in paths
    ]
    request.state.audit_target = ",".join(j.id for j in jobs)
    return JobAccepted(
        job_id=jobs[0].id, status=jobs[0].status, jobs=[JobOut.from_job(j) for j in jobs]
    )


@router.get(
    "",
    response_model=JobPage,
    summary="List jobs",
    responses=problem_responses(401, 422, 429),
)
def list_jobs(
    services: ServicesDep,
    principal: Viewer,
    status: Annotated[list[JobStatus] | None, Query(description="Repeatable")] = None,
    kind: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    queue: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    document_id: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JobPage:
    jobs = services.ctx.ledger.list_jobs(
        statuses=status, kind=kind, queue=queue, document_id=document_id, limit=limit, offset=offset
    )
    return JobPage(jobs=[JobOut.from_job(j) for j in jobs], limit=limit, offset=offset)


def _job_or_404(services: Services, job_id: str) -> Job:
    return actions.get_job(services.ctx.store, job_id)


@router.get(
    "/{job_id}",
    response_model=JobOut,
    summary="One job",
    responses=problem_responses(401, 404, 422, 429),
)
def get_job(services: ServicesDep, principal: Viewer, job_id: JobId) -> JobOut:
    job = _job_or_404(services, job_id)
    return JobOut.from_job(job, include_traceback=principal.role == "admin")


@router.delete(
    "/{job_id}",
    response_model=JobOut,
    summary="Cancel a job",
    responses=problem_responses(401, 403, 404, 409, 422, 429),
)
def cancel_job(services: ServicesDep, principal: Editor, job_id: JobId) -> JobOut:
    return JobOut.from_job(actions.cancel_job(services.ctx.store, job_id))


@router.post(
    "/{job_id}/retry",
    response_model=JobOut,
    summary="Re-queue a failed, dead or cancelled job",
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
)
def retry_job(services: ServicesDep, principal: Editor, job_id: JobId) -> JobOut:
    ctx = services.ctx
    return JobOut.from_job(actions.retry_job(ctx.store, ctx.settings, ctx.doorbell, job_id))


def _fingerprint(job: Job) -> tuple[Any, ...]:
    return (
        job.status,
        job.attempt,
        job.stage,
        job.progress,
        job.progress_message,
        job.cancel_requested,
    )


@router.get(
    "/{job_id}/events",
    summary="Follow a job: Server-Sent Events until it ends",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`job` events (the job object) on every change, then one `end` event",
        },
        **problem_responses(401, 404, 422, 429),
    },
)
async def job_events(
    services: ServicesDep, principal: Viewer, job_id: JobId, request: Request
) -> EventSourceResponse:
    first = await anyio.to_thread.run_sync(_job_or_404, services, job_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        job: Job | None = first
        seen: tuple[Any, ...] | None = None
        while job is not None:
            if _fingerprint(job) != seen:
                seen = _fingerprint(job)
                yield ServerSentEvent(
                    data=json.dumps(JobOut.from_job(job).model_dump(mode="json")),
                    event="job",
                    id=str(job.updated_at),
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
