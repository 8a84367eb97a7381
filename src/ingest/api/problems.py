"""RFC 9457 problem details, with stable `type` values clients can switch on."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import (
    ConfigError,
    ContentMismatch,
    DocumentRejected,
    EmbeddingError,
    FileNotInIncoming,
    FileTooLarge,
    IngestError,
    InvalidRequest,
    JobFinished,
    JobNotRetryable,
    NotFound,
    PathNotAllowed,
    QueryError,
    QueueFull,
    UnsupportedFormat,
)

log = logging.getLogger(__name__)
PROBLEM_TYPE_PREFIX = "urn:ingest:problem:"
MEDIA_TYPE = "application/problem+json"


class ApiProblem(Exception):
    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extra = extra


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_TYPE_PREFIX + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
    503: ("unavailable", "Service unavailable"),
}


# The first entry whose class the error is an instance of decides: subclasses first.
_DOMAIN_PROBLEMS: tuple[tuple[type[IngestError], int, str, str], ...] = (
    (FileNotInIncoming, 404, "file-not-found", "File not found"),
    (NotFound, 404, "not-found", "Not found"),
    (JobFinished, 409, "job-finished", "Job already finished"),
    (JobNotRetryable, 409, "job-not-retryable", "Job cannot be retried"),
    (QueueFull, 503, "queue-full", "Too much work queued"),
    (PathNotAllowed, 400, "path-outside-incoming-dir", "Path not allowed"),
    (InvalidRequest, 400, "bad-request", "Bad request"),
)


def _headers_for(exc: IngestError) -> dict[str, str] | None:
    if isinstance(exc, QueueFull):
        return {"Retry-After": str(exc.retry_after_s)}
    return None


def _ingest_error_problem(exc: IngestError) -> tuple[int, str, str]:
    for cls, status, slug, title in _DOMAIN_PROBLEMS:
        if isinstance(exc, cls):
            return status, slug, title
    if isinstance(exc, NotFound):
        return 404, "not-found", "Not found"
    if isinstance(exc, FileTooLarge):
        return 413, "payload-too-large", "Payload too large"
    if isinstance(exc, UnsupportedFormat):
        return 415, "unsupported-media-type", "Unsupported file type"
    if isinstance(exc, ContentMismatch):
        return 415, "content-mismatch", "Content does not match the file type"
    if isinstance(exc, DocumentRejected):
        return 422, "document-rejected", "Document rejected"
    if isinstance(exc, QueryError):
        return 400, "invalid-query", "Invalid query"
    if isinstance(exc, EmbeddingError):
        return 503, "embedder-unavailable", "Embedding service unavailable"
    if isinstance(exc, ConfigError):
        return 500, "misconfigured", "Server misconfigured"
    return 500, "internal-error", "Internal error"


_LOCATIONS = ("body", "query", "path", "header", "cookie")


def _error_field(err: dict[str, Any]) -> str:
    # A body that is not JSON at all names no field: its loc is ("body", <char offset>).
    if err.get("type") == "json_invalid":
        return ""
    # Only loc[0] is where the value came from: a body field may itself be named "query".
    loc = tuple(err.get("loc", ()))
    if loc and loc[0] in _LOCATIONS:
        loc = loc[1:]
    return ".".join(str(p) for p in loc)


def _error_message(err: dict[str, Any]) -> str:
    message = str(err.get("msg", "invalid"))
    if err.get("type") == "json_invalid":
        loc = err.get("loc", ())
        reason = (err.get("ctx") or {}).get("error")
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        message = f"{message}{where}" + (f": {reason}" if reason else "")
    return message


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.slug,
            exc.title,
            exc.detail,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _error_field(err),
                "location": str(err.get("loc", ("",))[0]),
                "message": _error_message(err),
            }
            for err in exc.errors()
        ]
        fields = ", ".join(e["field"] or e["location"] for e in errors)
        return problem_response(
            422,
            "validation-error",
            "Request validation failed",
            f"invalid fields: {fields}",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(
            exc.status_code, slug, title, detail, instance=request.url.path, headers=headers
        )

    @app.exception_handler(IngestError)
    async def _ingest(request: Request, exc: IngestError) -> JSONResponse:
        status, slug, title = _ingest_error_problem(exc)
        if status >= 500:
            log.error("request failed: %s", exc)
        return problem_response(
            status, slug, title, str(exc), instance=request.url.path, headers=_headers_for(exc)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "internal-error",
            "Internal error",
            "an unexpected error occurred; see the server log",
            instance=request.url.path,
        )
