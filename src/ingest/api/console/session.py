"""Console sign-in: an API key turned into a signed, expiring session cookie, a CSRF
token per session, and the role checks of the API (`ROLE_RANK`) for every page."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ingest.api.security import ROLE_RANK, Principal
from ingest.api.services import Services, get_services
from ingest.errors import ConsoleDenied, ConsoleRedirect

COOKIE = "ingest_console"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    csrf: str

    def may(self, role: str) -> bool:
        return ROLE_RANK.get(self.principal.role, -1) >= ROLE_RANK[role]


def _serializer(request: Request) -> URLSafeTimedSerializer:
    signer: URLSafeTimedSerializer = request.app.state.console_signer
    return signer


def make_signer(secret: str | None) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret or secrets.token_hex(32), salt="ingest-console-session")


def session_cookie(request: Request, key_id: str) -> str:
    """The cookie value for a fresh sign-in: the key's id and a new CSRF token."""
    return _serializer(request).dumps({"k": key_id, "c": secrets.token_urlsafe(24)})


def cookie_options(request: Request, max_age: int) -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, and Secure when the request came over TLS (directly
    or through a proxy that says so)."""
    secure = request.url.scheme == "https" or (
        request.headers.get("x-forwarded-proto", "").lower() == "https"
    )
    return {
        "max_age": max_age,
        "httponly": True,
        "samesite": "strict",
        "secure": secure,
        "path": "/console",
    }


def read_session(request: Request, services: Services) -> Session | None:
    """The signed-in session, if its cookie is genuine, unexpired and its key unrevoked."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    max_age = services.ctx.settings.console_session_minutes * 60
    try:
        data = _serializer(request).loads(raw, max_age=max_age)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    key = next((k for k in services.access.list_keys() if k.id == data.get("k")), None)
    if key is None or key.revoked_at is not None:
        return None
    return Session(Principal(key.id, key.name, key.role), str(data.get("c", "")))


def _signed_in(request: Request, services: Annotated[Services, Depends(get_services)]) -> Session:
    session = read_session(request, services)
    if session is None:
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise ConsoleRedirect(f"/console/signin?next={_quote(target)}")
        raise ConsoleDenied(401, "Your session has ended: sign in again.")
    request.state.principal = session.principal  # the audit log's actor
    return session


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def _with_role(role: str) -> Any:
    def dependency(session: Annotated[Session, Depends(_signed_in)]) -> Session:
        if not session.may(role):
            raise ConsoleDenied(
                403, f"This needs the {role} role; your key has {session.principal.role}."
            )
        return session

    return dependency


async def check_csrf(request: Request, session: Session) -> None:
    """A state-changing request must carry the session's token (form field or header)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, session.csrf):
        raise ConsoleDenied(403, "The form's security token is missing or stale: reload the page.")


ViewerSession = Annotated[Session, Depends(_with_role("viewer"))]
EditorSession = Annotated[Session, Depends(_with_role("editor"))]
AdminSession = Annotated[Session, Depends(_with_role("admin"))]
