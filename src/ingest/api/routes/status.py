"""/api/v1/status: documents by status, jobs by queue and status, workers, integrity."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends

from ingest.api.problems import problem_responses
from ingest.api.security import Viewer
from ingest.api.services import Services, get_services
from ingest.ingestion.overview import status_report
from ingest.models import StatusOut

router = APIRouter(prefix="/api/v1", tags=["operations"])
ServicesDep = Annotated[Services, Depends(get_services)]


@router.get(
    "/status",
    response_model=StatusOut,
    summary="What the system holds and how its jobs and workers stand (`ingest status`)",
    responses=problem_responses(401, 422, 429),
)
async def status(services: ServicesDep, principal: Viewer) -> StatusOut:
    report = await anyio.to_thread.run_sync(status_report, services.ctx)
    return StatusOut.model_validate(report)
