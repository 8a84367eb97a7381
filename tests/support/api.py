"""Driving the HTTP API as a client does: a real app (inline worker and scheduler
threads) on a real database, through Starlette's TestClient."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from ingest.api.app import create_app
from ingest.context import Context
from ingest.embedding import Embedder
from ingest.settings import Settings
from tests.support.sse import sse_events

PROBLEM = "urn:ingest:problem:"
TERMINAL = {"succeeded", "failed", "cancelled", "dead"}


@dataclass
class Api:
    client: TestClient
    ctx: Context
    keys: dict[str, str]

    def auth(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def get(self, url: str, role: str = "admin", **kwargs: Any) -> Response:
        return self.client.get(url, headers=self.auth(role), **kwargs)

    def post(self, url: str, role: str = "admin", **kwargs: Any) -> Response:
        return self.client.post(url, headers=self.auth(role), **kwargs)

    def delete(self, url: str, role: str = "admin") -> Response:
        return self.client.delete(url, headers=self.auth(role))

    def upload(
        self,
        paths: list[Path],
        *,
        collection: str = "handbook",
        metadata: dict[str, Any] | None = None,
        role: str = "editor",
    ) -> Response:
        files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
        data = {"collection": collection, "metadata": json.dumps(metadata or {})}
        return self.post("/api/v1/documents", role, files=files, data=data)

    def wait_job(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll GET /api/v1/jobs/{id} until the job is terminal, within a deadline."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.get(f"/api/v1/jobs/{job_id}")
            assert response.status_code == 200, response.text
            job: dict[str, Any] = response.json()
            if job["status"] in TERMINAL:
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
            time.sleep(0.05)  # the poll interval of a deadline-bounded poll


def wait_warm(ctx: Context, timeout: float = 120) -> None:
    """Until the app's warm-up has the model loaded, /health/ready says "loading"."""
    deadline = time.monotonic() + timeout
    while not ctx.embedder_ready:
        assert ctx.warm_up_error is None, ctx.warm_up_error
        assert time.monotonic() < deadline, "the embedder never warmed up"
        time.sleep(0.02)  # the poll interval of a deadline-bounded poll


@contextmanager
def running_api(settings: Settings, embedder: Embedder) -> Iterator[Api]:
    ctx = Context(settings, embedder=embedder)
    try:
        access = ctx.store.access
        keys = {role: access.create_key(role)[0] for role in ("admin", "editor", "viewer")}
        with TestClient(create_app(settings, context=ctx)) as client:
            wait_warm(ctx)
            yield Api(client, ctx, keys)
    finally:
        ctx.close()


def api_settings(settings: Settings, **changes: Any) -> Settings:
    # Parsing in the worker thread keeps the suite fast; isolation has its own tests.
    return settings.model_copy(update={"isolate_parsing": False, **changes})


def assert_problem(response: Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM + slug, body
    assert body["status"] == status
    assert body["title"]
    return body


def read_sse(response: Response) -> list[tuple[str, str]]:
    return list(sse_events(response))
