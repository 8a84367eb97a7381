"""The console's pages: each one calls the same route function the HTTP API serves,
with the signed-in key as its principal, so the console can do nothing the API cannot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from sse_starlette import EventSourceResponse

from ingest.api.console.session import (
    COOKIE,
    AdminSession,
    EditorSession,
    Session,
    ViewerSession,
    check_csrf,
    cookie_options,
    read_session,
    session_cookie,
)
from ingest.api.routes import admin as admin_routes
from ingest.api.routes import documents as document_routes
from ingest.api.routes import jobs as job_routes
from ingest.api.routes import query as query_routes
from ingest.api.security import client_ip
from ingest.api.services import Services, get_services
from ingest.errors import IngestError
from ingest.ingestion.overview import status_report
from ingest.models import ApiKeyOut, JobOut, SearchRequest, UploadAccepted
from ingest.store.access import key_prefix
from ingest.vocabulary import JobStatus

HERE = Path(__file__).parent
router = APIRouter(prefix="/console", include_in_schema=False)
ServicesDep = Annotated[Services, Depends(get_services)]
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)
DEAD_PAGE = 200
STATIC = {"console.css": "text/css", "console.js": "text/javascript"}


def render(request: Request, name: str, session: Session | None, **values: Any) -> HTMLResponse:
    html = templates.get_template(name).render(
        request=request, session=session, statuses=list(JobStatus), **values
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def highlight(text: str, query: str) -> Markup:
    """`text`, escaped, with every word of `query` (3+ letters) in <mark>."""
    words = sorted({w for w in re.findall(r"\w+", query.lower()) if len(w) >= 3}, key=len)
    escaped = str(escape(text))
    if not words:
        return Markup(escaped)
    pattern = re.compile("|".join(re.escape(w) for w in reversed(words)), re.IGNORECASE)
    return Markup(pattern.sub(lambda m: f"<mark>{m.group(0)}</mark>", escaped))


templates.filters["highlight"] = highlight


# --- signing in and out ------------------------------------------------------------


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The console's own CSS and script (public: the sign-in page needs them)."""
    if name not in STATIC:
        return Response(status_code=404)
    return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name])


@router.get("/signin")
def signin_page(request: Request, next: str = "/console") -> HTMLResponse:
    return render(request, "signin.html", None, next=_safe_next(next), error=None)


@router.post("/signin")
def signin(
    request: Request,
    services: ServicesDep,
    api_key: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "/console",
) -> Response:
    ip = client_ip(request)
    secret = api_key.strip()
    key = services.access.lookup(secret)
    if key is None:
        # Limited per (key prefix, address), as the API is: a valid key always signs in.
        prefix = key_prefix(secret)
        request.state.auth_failure = prefix  # the middleware audits the attempt
        if services.rate_limits.hit_auth_failure(ip, prefix) is not None:
            return _signin_error(request, next, "Too many failed sign-ins: wait a minute.", 429)
        return _signin_error(request, next, "That API key is unknown or revoked.", 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    minutes = services.ctx.settings.console_session_minutes
    response.set_cookie(
        COOKIE, session_cookie(request, key.id), **cookie_options(request, minutes * 60)
    )
    return response


def _signin_error(request: Request, next_: str, message: str, status: int) -> HTMLResponse:
    page = render(request, "signin.html", None, next=_safe_next(next_), error=message)
    page.status_code = status
    return page


def _safe_next(target: str) -> str:
    """Only a console path: never an open redirect to another site."""
    return target if target.startswith("/console") and "//" not in target else "/console"


@router.post("/signout")
async def signout(request: Request, session: ViewerSession) -> Response:
    await check_csrf(request, session)
    response = RedirectResponse("/console/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


# --- overview, jobs, dead letters --------------------------------------------------


@router.get("")
def overview(request: Request, services: ServicesDep, session: ViewerSession) -> HTMLResponse:
    report = status_report(services.ctx)
    readiness = _checks(admin_routes.ready(services).body)
    return render(request, "overview.html", session, report=report, readiness=readiness)


def _checks(body: bytes | memoryview) -> dict[str, Any]:
    import json

    try:
        parsed = json.loads(bytes(body))
    except ValueError:
        return {}
    checks: dict[str, Any] = parsed.get("checks", {})
    return checks


@router.get("/jobs")
def jobs_page(
    request: Request,
    services: ServicesDep,
    session: ViewerSession,
    status: Annotated[list[JobStatus] | None, Query()] = None,
    queue: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str, Query(max_length=200)] = "",
    partial: Annotated[str | None, Query(pattern="^rows$")] = None,
) -> HTMLResponse:
    """The jobs list; `?partial=rows` is its table alone, which the page's script
    fetches again every few seconds so statuses change without a reload."""
    page = job_routes.list_jobs(
        services, session.principal, status=status, queue=queue or None, limit=200
    )
    jobs = [j for j in page.jobs if _matches(j, q)]
    if partial:
        return render(request, "job_table.html", session, jobs=jobs)
    rows = [(k, v) for k, v in request.query_params.multi_items() if k != "partial"]
    refresh_url = f"/console/jobs?{urlencode([*rows, ('partial', 'rows')])}"
    return render(
        request,
        "jobs.html",
        session,
        jobs=jobs,
        status=status or [],
        queue=queue or "",
        q=q,
        refresh_url=refresh_url,
    )


def _matches(job: JobOut, text: str) -> bool:
    if not text:
        return True
    haystack = " ".join(
        str(v)
        for v in (job.job_id, job.kind, job.message, job.document_id, job.error, job.result)
        if v
    )
    return text.lower() in haystack.lower()


@router.get("/jobs/{job_id}")
def job_page(
    request: Request, services: ServicesDep, session: ViewerSession, job_id: str
) -> HTMLResponse:
    job = job_routes.get_job(services, session.principal, job_id)
    return render(request, "job.html", session, job=job)


@router.get("/jobs/{job_id}/events")
async def job_events(
    request: Request, services: ServicesDep, session: ViewerSession, job_id: str
) -> EventSourceResponse:
    """The API's job event stream, for the page's EventSource (which sends the cookie)."""
    return await job_routes.job_events(services, session.principal, job_id, request)


@router.post("/jobs/{job_id}/cancel")
async def cancel(
    request: Request, services: ServicesDep, session: EditorSession, job_id: str
) -> Response:
    await check_csrf(request, session)
    job_routes.cancel_job(services, session.principal, job_id)
    return RedirectResponse(f"/console/jobs/{job_id}", status_code=303)


@router.post("/jobs/{job_id}/retry")
async def retry(
    request: Request, services: ServicesDep, session: EditorSession, job_id: str
) -> Response:
    await check_csrf(request, session)
    job_routes.retry_job(services, session.principal, job_id)
    return RedirectResponse(f"/console/jobs/{job_id}", status_code=303)


@router.get("/dead")
def dead_letters(request: Request, services: ServicesDep, session: ViewerSession) -> HTMLResponse:
    # The newest DEAD_PAGE, as the jobs list: a page of 500 rows took ~0.5 s to render at
    # 1,000 dead letters (docs/benchmarks.md); `ingest jobs dead` lists them all.
    page = job_routes.list_jobs(
        services, session.principal, status=[JobStatus.DEAD], limit=DEAD_PAGE
    )
    return render(request, "dead.html", session, jobs=page.jobs, page_size=DEAD_PAGE)


@router.post("/dead/requeue")
async def requeue(request: Request, services: ServicesDep, session: EditorSession) -> Response:
    """One-click (one `job_id`) or bulk (several) requeue of dead letters."""
    await check_csrf(request, session)
    form = await request.form()
    for job_id in form.getlist("job_id"):
        if isinstance(job_id, str):
            job_routes.retry_job(services, session.principal, job_id)
    return RedirectResponse("/console/dead", status_code=303)


# --- documents, upload, search -----------------------------------------------------


@router.get("/documents")
def documents_page(
    request: Request,
    services: ServicesDep,
    session: ViewerSession,
    collection: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    page = document_routes.list_documents(
        services, session.principal, collection=collection or None, limit=200
    )
    return render(request, "documents.html", session, page=page, collection=collection or "")


@router.get("/documents/{document_id}")
def document_page(
    request: Request, services: ServicesDep, session: ViewerSession, document_id: str
) -> HTMLResponse:
    document = document_routes.get_document(services, session.principal, document_id)
    chunks = document_routes.get_chunks(services, session.principal, document_id, limit=200)
    return render(request, "document.html", session, document=document, chunks=chunks.chunks)


@router.post("/documents/{document_id}/delete")
async def delete_document(
    request: Request, services: ServicesDep, session: EditorSession, document_id: str
) -> Response:
    await check_csrf(request, session)
    document_routes.delete_document(services, session.principal, document_id)
    return RedirectResponse("/console/documents", status_code=303)


@router.get("/upload")
def upload_page(request: Request, session: EditorSession) -> HTMLResponse:
    return render(request, "upload.html", session)


@router.post("/upload")
async def upload(
    request: Request,
    services: ServicesDep,
    session: EditorSession,
    files: Annotated[list[UploadFile], File(min_length=1)],
    collection: Annotated[str, Form(min_length=1, max_length=200)] = "default",
) -> UploadAccepted:
    """The API's upload, for the page's script (JSON; errors are problem+json)."""
    await check_csrf(request, session)
    import anyio

    return await anyio.to_thread.run_sync(
        lambda: document_routes.upload_documents(
            services, session.principal, request, files, collection, None, None, None
        )
    )


@router.get("/search")
def search_page(
    request: Request,
    services: ServicesDep,
    session: ViewerSession,
    q: Annotated[str, Query(max_length=2000)] = "",
    collection: Annotated[str, Query(max_length=200)] = "",
    mode: Annotated[str, Query(pattern="^(hybrid|vector|keyword)$")] = "hybrid",
) -> HTMLResponse:
    hits: list[Any] = []
    error = None
    if q.strip():
        try:
            body = SearchRequest(query=q, k=10, collection=collection or None, mode=mode)
            hits = query_routes.search(services, session.principal, body).results
        except (IngestError, ValueError) as exc:
            error = str(exc)
    return render(
        request,
        "search.html",
        session,
        q=q,
        collection=collection,
        mode=mode,
        hits=hits,
        error=error,
    )


# --- admin ---------------------------------------------------------------------------


@router.get("/admin/keys")
def keys_page(request: Request, services: ServicesDep, session: AdminSession) -> HTMLResponse:
    keys = [ApiKeyOut.from_key(k) for k in services.access.list_keys()]
    return render(request, "keys.html", session, keys=keys, created=None)


@router.post("/admin/keys")
async def create_key(
    request: Request, services: ServicesDep, session: AdminSession
) -> HTMLResponse:
    await check_csrf(request, session)
    form = await request.form()
    role, name = str(form.get("role", "viewer")), str(form.get("name", ""))[:200]
    if role not in ("viewer", "editor", "admin"):
        role = "viewer"
    secret, key = services.access.create_key(role, name)
    request.state.audit_target = key.id
    keys = [ApiKeyOut.from_key(k) for k in services.access.list_keys()]
    return render(request, "keys.html", session, keys=keys, created=(secret, key))


@router.post("/admin/keys/{key_id}/revoke")
async def revoke_key(
    request: Request, services: ServicesDep, session: AdminSession, key_id: str
) -> Response:
    await check_csrf(request, session)
    services.access.revoke(key_id)
    return RedirectResponse("/console/admin/keys", status_code=303)


@router.get("/admin/audit")
def audit_page(request: Request, services: ServicesDep, session: AdminSession) -> HTMLResponse:
    page = admin_routes.audit(services, session.principal, limit=200, offset=0)
    return render(request, "audit.html", session, entries=page.entries)


__all__ = ["read_session", "router"]
