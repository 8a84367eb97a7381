"""/api/v1/sources: synced folders and buckets. Admins add, sync and remove them;
viewers read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from ingest.api.problems import problem_responses
from ingest.api.security import Admin, Viewer
from ingest.api.services import Services, get_services
from ingest.ingestion import sources
from ingest.models import NO_NUL, JobOut, SourceAdded, SourceIn, SourceOut, SourcePage

router = APIRouter(prefix="/api/v1/sources", tags=["sources"])
ServicesDep = Annotated[Services, Depends(get_services)]
SourceId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL)]


@router.post(
    "",
    status_code=201,
    response_model=SourceAdded,
    summary="Add a synced source (a folder or s3://bucket/prefix) and queue its first sync",
    description="A folder must lie under INGEST_SOURCE_ROOTS (else 400 source-not-allowed).",
    responses=problem_responses(400, 401, 403, 409, 422, 429),
)
def add_source(
    services: ServicesDep, principal: Admin, body: SourceIn, request: Request
) -> SourceAdded:
    ctx = services.ctx
    sources.check_api_location(body.location, ctx.settings)
    source, job = sources.add_source(
        ctx.store,
        ctx.settings,
        ctx.doorbell,
        body.location,
        collection=body.collection,
        every=body.every,
        include=body.include,
        exclude=body.exclude,
    )
    request.state.audit_target = source.id
    return SourceAdded(source=SourceOut.from_record(source), job=JobOut.from_job(job))


@router.get(
    "",
    response_model=SourcePage,
    summary="Every synced source, with its last sync",
    responses=problem_responses(401, 422, 429),
)
def list_sources(services: ServicesDep, principal: Viewer) -> SourcePage:
    found = services.ctx.store.sources.list()
    return SourcePage(sources=[SourceOut.from_record(s) for s in found])


@router.get(
    "/{source_id}",
    response_model=SourceOut,
    summary="One synced source, with its last sync report",
    responses=problem_responses(401, 404, 422, 429),
)
def get_source(services: ServicesDep, principal: Viewer, source_id: SourceId) -> SourceOut:
    return SourceOut.from_record(sources.get_source(services.ctx.store, source_id))


@router.post(
    "/{source_id}/sync",
    status_code=202,
    response_model=JobOut,
    summary="Sync the source now; follow the job for its report",
    responses=problem_responses(401, 403, 404, 422, 429),
)
def sync_source(
    services: ServicesDep, principal: Admin, source_id: SourceId, request: Request
) -> JobOut:
    ctx = services.ctx
    job = sources.sync_now(ctx.store, ctx.settings, ctx.doorbell, source_id)
    request.state.audit_target = source_id
    return JobOut.from_job(job)


@router.delete(
    "/{source_id}",
    status_code=204,
    summary="Stop syncing the source (its documents stay)",
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422, 429),
)
def remove_source(services: ServicesDep, principal: Admin, source_id: SourceId) -> Response:
    sources.remove_source(services.ctx.store, source_id)
    return Response(status_code=204)
