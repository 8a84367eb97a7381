"""API-key authentication, roles and per-key rate limits, as FastAPI dependencies.

Keys arrive as `Authorization: Bearer KEY` (or `X-API-Key: KEY`). No key or an
unknown key is 401; a known key without the needed role is 403. Failed attempts are
limited per (key prefix, client IP): a valid key is never refused because another
key failed from the same address.

These answers stay HTTP-level `ApiProblem`s rather than domain errors: credentials,
roles and rate limits exist only at this transport (the CLI has none of them), and
their answers carry HTTP headers (WWW-Authenticate, Retry-After)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ingest.api.problems import ApiProblem
from ingest.api.services import Services, get_services
from ingest.store.access import key_prefix

ROLE_RANK = {"viewer": 0, "editor": 1, "admin": 2}

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer KEY`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    role: str


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _too_many(retry_after: int, what: str) -> ApiProblem:
    return ApiProblem(
        429,
        "rate-limited",
        "Too many requests",
        f"{what}; retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


async def authenticate(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_header)],
) -> Principal:
    ip = client_ip(request)
    secret = bearer.credentials if bearer else header_key
    if not secret:
        raise ApiProblem(
            401,
            "missing-credentials",
            "Authentication required",
            "send an API key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    record = await run_in_threadpool(services.access.lookup, secret)
    if record is None:
        prefix = key_prefix(secret)
        request.state.auth_failure = prefix  # the middleware audits the attempt
        blocked = services.rate_limits.hit_auth_failure(ip, prefix)
        if blocked is not None:
            raise _too_many(
                blocked, "too many failed authentication attempts with this key from this address"
            )
        raise ApiProblem(
            401,
            "invalid-credentials",
            "Invalid API key",
            "the API key is unknown or revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = Principal(record.id, record.name, record.role)
    request.state.principal = principal
    wait = services.rate_limits.hit_key(record.id)
    if wait is not None:
        raise _too_many(wait, "this API key exceeded its rate limit")
    return principal


def require(role: str) -> Callable[..., Principal]:
    needed = ROLE_RANK[role]

    def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if ROLE_RANK.get(principal.role, -1) < needed:
            raise ApiProblem(
                403,
                "forbidden",
                "Forbidden",
                f"this action needs the {role} role; the key has {principal.role}",
            )
        return principal

    # Read by the OpenAPI document (x-required-role) and the route auth test.
    dependency.required_role = role  # type: ignore[attr-defined]
    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Editor = Annotated[Principal, Depends(require("editor"))]
Admin = Annotated[Principal, Depends(require("admin"))]
