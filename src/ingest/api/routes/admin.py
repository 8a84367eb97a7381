"""/api/v1/audit (admins), /health/live, /health/ready, /metrics (public)."""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest.api.problems import problem_responses
from ingest.api.security import Admin
from ingest.api.services import Services, get_services
from ingest.errors import EmbedderLoading
from ingest.models import AuditEntry, AuditPage, CheckOut, HealthOut, ReadinessOut

router = APIRouter(tags=["operations"])
ServicesDep = Annotated[Services, Depends(get_services)]


@router.get(
    "/api/v1/audit",
    response_model=AuditPage,
    summary="The audit log of mutating calls (admins)",
    responses=problem_responses(401, 403, 422, 429),
)
def audit(
    services: ServicesDep,
    principal: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditPage:
    entries = services.access.audit_entries(limit=limit, offset=offset)
    return AuditPage(entries=[AuditEntry.from_row(e) for e in entries], limit=limit, offset=offset)


@router.get("/health/live", response_model=HealthOut, summary="The process is up")
def live() -> HealthOut:
    return HealthOut(status="ok")


def _check(fn: Any) -> CheckOut:
    try:
        detail = fn()
    except Exception as exc:
        return CheckOut(status="error", detail=f"{type(exc).__name__}: {exc}"[:300])
    return CheckOut(status="ok", detail=detail) if detail else CheckOut(status="ok")


@router.get(
    "/health/ready",
    response_model=ReadinessOut,
    summary="Every dependency the service needs answers",
    responses={503: {"model": ReadinessOut, "description": "An enabled check failed"}},
)
def ready(services: ServicesDep) -> JSONResponse:
    ctx = services.ctx
    s = ctx.settings

    def database() -> str:
        ctx.store.require_current_schema()
        return ctx.store.dialect

    def database_read() -> str:
        return ctx.store.read_replica_status()

    def redis() -> str:
        import redis as redis_lib

        client = redis_lib.Redis.from_url(
            str(s.redis_url), socket_timeout=2, socket_connect_timeout=2
        )
        try:
            client.ping()
        finally:
            client.close()
        return ""

    on_s3 = s.storage == "s3"

    def staging() -> str:
        # The folder is written to, the bucket asked for (HEAD): uploads can be staged.
        return ctx.staging.check_ready()

    def embedder() -> str:
        if not ctx.embedder_ready:
            # Ready means a query embeds at once, not after a model load.
            raise ctx.warm_up_error or EmbedderLoading("the embedding model is loading")
        path = ctx.embedder.tokenizer_path
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        return ctx.embedder.model_id

    def workers() -> str:
        live = [w for w in ctx.store.workers.list(stale_after=s.worker_stale_seconds) if w.live]
        if not live:
            raise RuntimeError("no live worker: start `python -m ingest.worker`")
        return f"{len(live)} live"

    checks: dict[str, CheckOut] = {
        "database": _check(database),
        "redis": _check(redis) if s.redis_url else CheckOut(status="disabled"),
        # With S3 staging no folder is needed: the bucket is checked as "staging".
        "incoming_dir": CheckOut(status="disabled") if on_s3 else _check(staging),
        "staging": _check(staging) if on_s3 else CheckOut(status="ok", detail="incoming_dir"),
        "embedder": _check(embedder),
        "workers": _check(workers) if s.mode == "queue" else CheckOut(status="ok", detail="inline"),
    }
    if s.database_read_url:  # search and listings fail without their replica
        checks["database_read"] = _check(database_read)
    healthy = all(c["status"] != "error" for c in checks.values())
    body = ReadinessOut(status="ok" if healthy else "error", checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if healthy else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
            "description": "The Prometheus text format",
        }
    },
)
def metrics(services: ServicesDep) -> Response:
    registry = services.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
