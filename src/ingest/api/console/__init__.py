"""The operator console at /console: server-rendered pages (Jinja2 templates and a
little plain JavaScript shipped in this package; no build step, no CDN) over the same
route functions the HTTP API serves. See docs/console.md."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ingest.api.console.pages import render, router
from ingest.api.console.session import make_signer, read_session
from ingest.errors import ConsoleDenied, ConsoleRedirect
from ingest.settings import Settings


def install_console(app: FastAPI, settings: Settings) -> None:
    secret = settings.console_secret.get_secret_value() if settings.console_secret else None
    app.state.console_signer = make_signer(secret)
    app.include_router(router)

    @app.exception_handler(ConsoleRedirect)
    async def _redirect(request: Request, exc: ConsoleRedirect) -> Response:
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(ConsoleDenied)
    async def _denied(request: Request, exc: ConsoleDenied) -> Response:
        if "text/html" not in request.headers.get("accept", ""):
            body = {"title": "Forbidden" if exc.status == 403 else "Sign in", "detail": str(exc)}
            return JSONResponse(body, status_code=exc.status)
        session = read_session(request, request.app.state.services)
        page: HTMLResponse = render(request, "denied.html", session, message=str(exc))
        page.status_code = exc.status
        return page


__all__ = ["install_console"]
