"""RFC 9457 problem details, with stable `type` values clients can switch on.

The one place domain errors (`IngestError` subclasses) become HTTP answers: routes
raise what went wrong in their own terms, this module picks status, slug and title.
It also documents those answers in the OpenAPI document."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ingest.errors import (
    ConfigError,
    ContentMismatch,
    DocumentRejected,
    EmbeddingError,
    FileTooLarge,
    IdempotencyKeyReused,
    IncomingFileNotFound,
    IngestError,
    InvalidInput,
    JobFinished,
    JobNotRetryable,
    NotFound,
    PathNotAllowed,
    QueryError,
    QueueFull,
    SourceExists,
    SourceNotAllowed,
    StagingUnavailable,
    TooManyFiles,
    UnsupportedFormat,
)
from ingest.models import (
    MAX_METADATA_CHARS,
    MAX_METADATA_DEPTH,
    NO_NUL,
    RESERVED_METADATA_KEYS,
    FieldError,
    Problem,
)

log = logging.getLogger(__name__)
PROBLEM_TYPE_PREFIX = "urn:ingest:problem:"
MEDIA_TYPE = "application/problem+json"


class ApiProblem(Exception):
    """An answer that is about HTTP itself (credentials, rate limits), not the domain."""

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
    problem = Problem(
        type=PROBLEM_TYPE_PREFIX + slug,
        title=title,
        status=status,
        detail=detail or None,
        instance=instance,
        **extra,
    )
    body = problem.model_dump(mode="json", exclude_none=True)
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


@dataclass(frozen=True, slots=True)
class _Mapping:
    error: type[IngestError]
    status: int
    slug: str
    title: str


# Most specific first: the first class the error is an instance of wins.
_DOMAIN_PROBLEMS = (
    _Mapping(InvalidInput, 422, "validation-error", "Request validation failed"),
    _Mapping(PathNotAllowed, 400, "path-outside-incoming-dir", "Path not allowed"),
    _Mapping(IncomingFileNotFound, 404, "file-not-found", "File not found"),
    _Mapping(NotFound, 404, "not-found", "Not found"),
    _Mapping(JobFinished, 409, "job-finished", "Job already finished"),
    _Mapping(JobNotRetryable, 409, "job-not-retryable", "Job cannot be retried"),
    _Mapping(
        IdempotencyKeyReused,
        409,
        "idempotency-key-reused",
        "Idempotency key already used for another request",
    ),
    _Mapping(SourceExists, 409, "source-exists", "Source already added"),
    _Mapping(SourceNotAllowed, 400, "source-not-allowed", "Source location not allowed"),
    _Mapping(TooManyFiles, 413, "too-many-files", "Too many files"),
    _Mapping(FileTooLarge, 413, "payload-too-large", "Payload too large"),
    _Mapping(UnsupportedFormat, 415, "unsupported-media-type", "Unsupported file type"),
    _Mapping(ContentMismatch, 415, "content-mismatch", "Content does not match the file type"),
    _Mapping(DocumentRejected, 422, "document-rejected", "Document rejected"),
    _Mapping(QueryError, 400, "invalid-query", "Invalid query"),
    _Mapping(QueueFull, 503, "queue-full", "Too much work queued"),
    _Mapping(EmbeddingError, 503, "embedder-unavailable", "Embedding service unavailable"),
    _Mapping(StagingUnavailable, 503, "staging-unavailable", "Upload storage unavailable"),
    _Mapping(ConfigError, 500, "misconfigured", "Server misconfigured"),
)
_INTERNAL = _Mapping(IngestError, 500, "internal-error", "Internal error")


def _mapping_for(exc: IngestError) -> _Mapping:
    return next((m for m in _DOMAIN_PROBLEMS if isinstance(exc, m.error)), _INTERNAL)


def _domain_extras(exc: IngestError) -> tuple[dict[str, str] | None, dict[str, Any]]:
    """(headers, extra body members) some errors carry."""
    if isinstance(exc, QueueFull):
        return {"Retry-After": str(exc.retry_after)}, {}
    if isinstance(exc, StagingUnavailable):
        return {"Retry-After": "5"}, {}
    if isinstance(exc, InvalidInput):
        error = FieldError(field=exc.field, location=exc.location, message=str(exc))
        return None, {"errors": [error]}
    return None, {}


def _domain_detail(exc: IngestError) -> str:
    if isinstance(exc, InvalidInput) and exc.field:
        return f"{exc.field}: {exc}"
    return str(exc)


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


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path: Starlette's own 405 names only
    the first route that matched the path, not its siblings (GET and DELETE...)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(dict(request.scope))
        if match != Match.NONE:
            methods |= set(route.methods or ())
    return ", ".join(sorted(methods))


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
            FieldError(
                field=_error_field(err),
                location=str(err.get("loc", ("",))[0]),
                message=_error_message(err),
            )
            for err in exc.errors()
        ]
        fields = ", ".join(e.field or e.location for e in errors)
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
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return problem_response(
            exc.status_code, slug, title, detail, instance=request.url.path, headers=headers or None
        )

    @app.exception_handler(IngestError)
    async def _ingest(request: Request, exc: IngestError) -> JSONResponse:
        mapping = _mapping_for(exc)
        if mapping.status >= 500 and mapping.status != 503:
            log.error("request failed: %s", exc)
        headers, extra = _domain_extras(exc)
        return problem_response(
            mapping.status,
            mapping.slug,
            mapping.title,
            _domain_detail(exc),
            instance=request.url.path,
            headers=headers,
            **extra,
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


# --- the OpenAPI document ----------------------------------------------------------

_DESCRIPTIONS = {
    400: "Bad request: a body that does not parse (not UTF-8, broken multipart), a path "
    "not allowed",
    401: "No API key, or an unknown or revoked one",
    403: "The API key's role is below this operation's",
    404: "No such record",
    409: "Conflicts with the record's current state",
    413: "Too large: a file, the number of files, or the body",
    415: "Unsupported file type, or content that does not match it",
    422: "Request validation failed; `errors` names the fields",
    429: "Rate limited; see Retry-After",
    503: "Unavailable for now (queue full, embedder down); see Retry-After",
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


_HEADERS = {
    401: {
        "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}},
    },
    429: {
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait (when the queue is full)",
            "schema": {"type": "integer"},
        },
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers an operation really gives, for its `responses=`."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {"model": Problem, "description": _DESCRIPTIONS[status]}
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[status] = response
    return responses


def _is_problem(content: dict[str, Any]) -> bool:
    schema = content.get("application/json", {}).get("schema", {})
    return bool(schema == _PROBLEM_REF)


def _as_problem_json(spec: dict[str, Any]) -> dict[str, Any]:
    """Problem answers are served as application/problem+json: say so."""
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if _is_problem(content):
                    response["content"] = {MEDIA_TYPE: content["application/json"]}
    return spec


def _roles_by_operation(app: FastAPI) -> dict[tuple[str, str], str]:
    """(method, path) -> the role its `require(...)` dependency enforces."""
    roles: dict[tuple[str, str], str] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        role = _required_role(route.dependant.dependencies)
        if role:
            for method in route.methods or ():
                roles[(method.lower(), route.path_format)] = role
    return roles


def _required_role(dependencies: Iterable[Any]) -> str | None:
    for dependency in dependencies:
        role = getattr(dependency.call, "required_role", None)
        if isinstance(role, str):
            return role
        found = _required_role(dependency.dependencies)
        if found:
            return found
    return None


# A form field marked with this carries a JSON object (its part is application/json).
JSON_OBJECT_FIELD = {"x-json-object": True}
_METADATA_VALUE = "MetadataValue"


def _metadata_schemas() -> dict[str, Any]:
    """What a metadata object may hold, as JSON Schema: nothing PostgreSQL cannot
    store (no NUL), no reserved key at the top level. Depth and size limits are
    in the description: JSON Schema cannot bound nesting."""
    text = {"type": "string", "pattern": NO_NUL}
    value_ref = {"$ref": f"#/components/schemas/{_METADATA_VALUE}"}
    return {
        "Metadata": {
            "type": "object",
            "description": (
                f"A JSON object: at most {MAX_METADATA_CHARS:,} characters of JSON, nested at "
                f"most {MAX_METADATA_DEPTH} levels, finite numbers, no NUL characters; the "
                f"keys {', '.join(sorted(RESERVED_METADATA_KEYS))} are reserved"
            ),
            "propertyNames": {**text, "not": {"enum": sorted(RESERVED_METADATA_KEYS)}},
            "additionalProperties": value_ref,
        },
        _METADATA_VALUE: {
            "anyOf": [
                text,
                {"type": "number"},
                {"type": "boolean"},
                {"type": "null"},
                {"type": "array", "items": value_ref},
                {"type": "object", "propertyNames": text, "additionalProperties": value_ref},
            ]
        },
    }


def _json_form_fields(spec: dict[str, Any]) -> dict[str, Any]:
    """Form fields marked JSON_OBJECT_FIELD are documented as the JSON objects they
    carry, so clients (and the fuzzer) send objects, not arbitrary text."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    marked: dict[str, list[str]] = {}
    for name, schema in schemas.items():
        for field, prop in schema.get("properties", {}).items():
            if prop.pop("x-json-object", False):
                schema["properties"][field] = {
                    "$ref": "#/components/schemas/Metadata",
                    "description": prop.get("description", ""),
                }
                marked.setdefault(f"#/components/schemas/{name}", []).append(field)
    if not marked:
        return spec
    schemas.update(_metadata_schemas())
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
            fields = marked.get((form or {}).get("schema", {}).get("$ref", ""))
            if form is not None and fields:
                encoding = form.setdefault("encoding", {})
                for field in fields:
                    encoding[field] = {"contentType": "application/json"}
    return spec


def install_openapi(app: FastAPI) -> None:
    """The app's OpenAPI document, with problem answers as application/problem+json
    and each operation's required role as `x-required-role`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        spec = _json_form_fields(_as_problem_json(spec))
        for (method, path), role in _roles_by_operation(app).items():
            operation = spec["paths"].get(path, {}).get(method)
            if operation is not None:
                operation["x-required-role"] = role
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
