"""The FastAPI app factory. In inline mode the API process also runs the job
worker and the maintenance scheduler in background threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope
from swagger_ui_bundle import swagger_ui_path

from ingest import __version__
from ingest.api.console import install_console
from ingest.api.metrics import build_registry
from ingest.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from ingest.api.problems import install_openapi, install_problem_handlers
from ingest.api.ratelimit import RateLimits
from ingest.api.routes import admin, documents, jobs, query, sources, status
from ingest.api.services import Services
from ingest.context import Context
from ingest.jobs.scheduler import Scheduler
from ingest.query.memory import ConversationMemory, RedisMemory, SqlMemory
from ingest.settings import Settings, load_settings

log = logging.getLogger(__name__)
_JSON_BODY_LIMIT = 1024 * 1024


def build_services(ctx: Context) -> Services:
    s = ctx.settings
    memory: ConversationMemory = (
        RedisMemory(s.redis_url, s.chat_history_messages)
        if s.redis_url
        else SqlMemory(ctx.store.access, s.chat_history_messages)
    )
    registry, latency = build_registry(ctx)
    return Services(
        ctx=ctx,
        access=ctx.store.access,
        rate_limits=RateLimits(
            per_key=s.rate_limit, auth_failures=s.auth_failure_rate_limit, redis_url=s.redis_url
        ),
        memory=memory,
        metrics_registry=registry,
        http_latency=latency,
    )


class InlineRunner:
    """The worker and scheduler threads of an inline-mode API process."""

    def __init__(self, ctx: Context) -> None:
        self.worker = ctx.worker()
        # The worker reaps expired leases, sparing its own running jobs; a second
        # reaper in this process would not know which of them are alive.
        self.scheduler = Scheduler(ctx.runtime, reap=False)
        self.threads = [
            threading.Thread(target=self.worker.run, name="inline-worker", daemon=True),
            threading.Thread(target=self.scheduler.run, name="inline-scheduler", daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.worker.stop()
        for thread in self.threads:
            thread.join()


def warm_up_in_background(ctx: Context) -> threading.Thread:
    """Load the model beside the serving loop: /health/live answers at once, and
    /health/ready reports the embedder only once a query embeds without a load."""

    def warm_up() -> None:
        try:
            ctx.warm_up()
        except Exception:
            log.exception("the embedder did not load; /health/ready reports it")

    thread = threading.Thread(target=warm_up, name="warm-up", daemon=True)
    thread.start()
    return thread


OPENAPI_URL = "/api/v1/openapi.json"
DOCS_URL = "/api/v1/docs"
_DOCS_ASSETS = f"{DOCS_URL}/assets"


def serve_docs_offline(app: FastAPI) -> None:
    """The API docs page with Swagger UI's assets served from the installed package
    (swagger-ui-bundle-v2), so it works with no internet access; `/` leads to it (a
    browser's `/` to the console)."""
    app.mount(_DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get(DOCS_URL, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")  # behind a proxy that strips a prefix
        return get_swagger_ui_html(
            openapi_url=root + OPENAPI_URL,
            title="ingest API",
            swagger_js_url=f"{root}{_DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{_DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{_DOCS_ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=None,
            # No call to the online validator either.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> RedirectResponse:
        # A browser (it asks for HTML) lands on the console; any other client on the
        # API docs, as before.
        target = "/console" if "text/html" in request.headers.get("accept", "") else DOCS_URL
        return RedirectResponse(request.scope.get("root_path", "") + target)


def create_app(settings: Settings | None = None, *, context: Context | None = None) -> FastAPI:
    settings = settings or (context.settings if context else load_settings())
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = context or Context(settings)
        # At start, not at the first upload: INGEST_STORAGE=s3 without boto3 or a
        # bucket is a ConfigError the operator sees before serving.
        ctx.staging  # noqa: B018
        services = build_services(ctx)
        app.state.services = services
        state["services"] = services
        warm_up_in_background(ctx)
        runner = InlineRunner(ctx) if settings.mode == "inline" else None
        if runner:
            runner.start()
        log.info("API ready (mode=%s)", settings.mode)
        try:
            yield
        finally:
            if runner:
                runner.stop()
            if context is None:
                ctx.close()

    app = FastAPI(
        title="ingest",
        version=__version__,
        summary="Durable document ingestion and hybrid retrieval",
        openapi_url=OPENAPI_URL,
        docs_url=None,  # served by serve_docs_offline: FastAPI's page loads a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    serve_docs_offline(app)  # first, where FastAPI's own docs route would be
    install_problem_handlers(app)
    routers = (documents, jobs, sources, query, admin, status)
    for module in routers:
        app.include_router(module.router)
    install_openapi(app)
    install_console(app, settings)

    def upload_limit(scope: Scope) -> int:
        if (
            scope.get("path", "").rstrip("/") in ("/api/v1/documents", "/console/upload")
            and scope.get("method") == "POST"
        ):
            return settings.max_upload_bytes * settings.max_files_per_upload + 1024 * 1024
        return _JSON_BODY_LIMIT

    app.add_middleware(BodyLimitMiddleware, limit_for=upload_limit)
    app.add_middleware(RequestContextMiddleware, get_services=lambda scope: state.get("services"))
    return app


def app_from_environment() -> FastAPI:
    """Entry point for `uvicorn --factory ingest.api.app:app_from_environment`."""
    from ingest.logs import configure_logging

    settings = load_settings()
    configure_logging(settings, default_level="info")
    return create_app(settings)
