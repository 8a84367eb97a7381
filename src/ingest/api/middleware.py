"""Pure-ASGI middleware: request ids and log context, latency metrics, the audit
log of mutating calls and failed authentications, and a bound on request bodies."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.api.problems import MEDIA_TYPE, PROBLEM_TYPE_PREFIX
from ingest.logs import log_context

log = logging.getLogger("ingest.api")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# POSTs that only read: audited only when refused (failed authentication matters).
_READ_ONLY_ROUTES = {"/api/v1/search", "/api/v1/chat"}


class BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    """Request id, structured access log, HTTP latency, and the audit log."""

    def __init__(self, app: ASGIApp, *, get_services: Any) -> None:
        self.app = app
        self.get_services = get_services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = log_context.set({"request_id": request_id})
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            services = self.get_services(scope)
            if services is not None:
                services.http_latency.labels(scope["method"], route, str(status)).observe(elapsed)
                failed_key = scope.get("state", {}).get("auth_failure") is not None
                if route.startswith(("/api/v1", "/console")) and (
                    failed_key
                    or (
                        scope["method"] in _MUTATING
                        and (route not in _READ_ONLY_ROUTES or status in (401, 403))
                    )
                ):
                    _audit(services, scope, route, status, request_id)
            log.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, elapsed * 1000)
            log_context.reset(token)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


def _audit(services: Any, scope: Scope, route: str, status: int, request_id: str) -> None:
    state = scope.get("state", {})
    principal = state.get("principal")
    failed_key = state.get("auth_failure")
    target = state.get("audit_target") or ",".join(
        str(v) for v in (scope.get("path_params") or {}).values()
    )
    outcome = "success" if status < 400 else ("denied" if status in (401, 403, 429) else "error")
    client = scope.get("client")
    actor = None
    if principal:
        actor = f"{principal.name} ({principal.key_id})"
    elif failed_key:
        actor = f"unknown key {failed_key}"
    try:
        services.access.audit(
            actor=actor.replace("\x00", "\ufffd")[:200] if actor else None,
            source_ip=client[0] if client else None,
            action=f"{scope['method']} {route}",
            # A refused request's path may hold a NUL, which PostgreSQL cannot store.
            target=target.replace("\x00", "\ufffd") if target else None,
            outcome=outcome,
            status_code=status,
            request_id=request_id,
        )
    except Exception:
        log.exception("could not write the audit log")


class BodyLimitMiddleware:
    """413 for bodies over the limit, by Content-Length up front or by counting
    the bytes of a chunked upload as they arrive."""

    def __init__(self, app: ASGIApp, *, limit_for: Any) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit: int = self.limit_for(scope)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _send_413(send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_413(send, limit)


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "type": PROBLEM_TYPE_PREFIX + "payload-too-large",
            "title": "Payload too large",
            "status": 413,
            "detail": f"the request body exceeds {limit:,} bytes",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
