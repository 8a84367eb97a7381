"""The API's contract as a client reads it: named schemas in /openapi.json, every
error documented as application/problem+json, every route behind its role, 405s
that say what is allowed, and one job object for the CLI and the API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.settings import Settings
from tests.conftest import CountingEmbedder
from tests.fixtures_docs import make_corrupt_pdf
from tests.support.api import Api, api_settings, assert_problem, running_api

# Public by design: probes and scrapers carry no key.
PUBLIC = {("GET", "/health/live"), ("GET", "/health/ready"), ("GET", "/metrics")}
# The role each operation needs. A new route fails the walk below until it is added
# here (or, on purpose, to PUBLIC).
ROLES = {
    ("POST", "/api/v1/documents"): "editor",
    ("GET", "/api/v1/documents"): "viewer",
    ("GET", "/api/v1/documents/{document_id}"): "viewer",
    ("DELETE", "/api/v1/documents/{document_id}"): "editor",
    ("GET", "/api/v1/documents/{document_id}/chunks"): "viewer",
    ("POST", "/api/v1/jobs/ingest"): "editor",
    ("GET", "/api/v1/jobs"): "viewer",
    ("GET", "/api/v1/jobs/{job_id}"): "viewer",
    ("DELETE", "/api/v1/jobs/{job_id}"): "editor",
    ("POST", "/api/v1/jobs/{job_id}/retry"): "editor",
    ("GET", "/api/v1/jobs/{job_id}/events"): "viewer",
    ("POST", "/api/v1/search"): "viewer",
    ("POST", "/api/v1/chat"): "viewer",
    ("GET", "/api/v1/audit"): "admin",
    ("GET", "/api/v1/status"): "viewer",
    ("POST", "/api/v1/sources"): "admin",
    ("GET", "/api/v1/sources"): "viewer",
    ("GET", "/api/v1/sources/{source_id}"): "viewer",
    ("POST", "/api/v1/sources/{source_id}/sync"): "admin",
    ("DELETE", "/api/v1/sources/{source_id}"): "admin",
}
ROLE_BELOW = {"editor": "viewer", "admin": "editor"}
PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


@pytest.fixture
def api(settings: Settings, embedder: CountingEmbedder) -> Iterator[Api]:
    with running_api(api_settings(settings), embedder) as running:
        yield running


def _spec(api: Api) -> dict[str, Any]:
    response = api.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def test_every_route_needs_a_key_and_its_role(api: Api) -> None:
    operations = _operations(_spec(api))
    unlisted = set(operations) - set(ROLES) - PUBLIC
    assert not unlisted, f"new routes {unlisted}: give each a role in ROLES (or make it PUBLIC)"
    assert set(operations) == set(ROLES) | PUBLIC
    for (method, path), role in ROLES.items():
        operation = operations[(method, path)]
        assert operation["x-required-role"] == role, (method, path)
        assert operation["security"], (method, path)
        url = path.format(document_id="x", job_id="x", source_id="x")
        anonymous = api.client.request(method, url)
        assert_problem(anonymous, 401, "missing-credentials")
        assert anonymous.headers["www-authenticate"] == "Bearer"
        unknown = api.client.request(method, url, headers={"Authorization": "Bearer ingk_x"})
        assert_problem(unknown, 401, "invalid-credentials")
        if role in ROLE_BELOW:
            below = api.client.request(method, url, headers=api.auth(ROLE_BELOW[role]))
            assert_problem(below, 403, "forbidden")
        allowed = api.client.request(method, url, headers=api.auth(role))
        assert allowed.status_code not in (401, 403), (method, path, allowed.text)
    for method, path in PUBLIC:
        assert "x-required-role" not in operations[(method, path)]
        assert api.client.request(method, path).status_code == 200, path


# Console routes anyone may reach: the sign-in form and its assets.
CONSOLE_PUBLIC = {
    ("GET", "/console/signin"),
    ("POST", "/console/signin"),
    ("GET", "/console/static/{name}"),
}


def _console_routes() -> set[tuple[str, str]]:
    from starlette.routing import Route

    from ingest.api.console.pages import router

    return {
        (method, route.path)
        for route in router.routes
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }


def test_every_console_route_needs_a_session(api: Api) -> None:
    routes = _console_routes()
    assert len(routes) > 20
    assert routes >= CONSOLE_PUBLIC
    forged = "eyJrIjoieCIsImMiOiJ5In0.bogus.signature"
    for method, path in sorted(routes - CONSOLE_PUBLIC):
        url = re.sub(r"\{[^}]+\}", "x", path)
        for cookies in ({}, {"ingest_console": forged}):
            api.client.cookies.clear()
            for name, value in cookies.items():
                api.client.cookies.set(name, value, path="/console")
            response = api.client.request(method, url, follow_redirects=False)
            if method == "GET":
                assert response.status_code == 303, (method, path, response.status_code)
                assert response.headers["location"].startswith("/console/signin"), path
            else:
                assert response.status_code == 401, (method, path, response.status_code)
    api.client.cookies.clear()


def test_the_openapi_document_names_every_object(api: Api) -> None:
    spec = _spec(api)
    schemas = spec["components"]["schemas"]
    for name in ("JobOut", "JobError", "StageOut", "HitOut", "DocumentOut", "ChunkOut", "Problem"):
        assert name in schemas, name
    assert not {"HTTPValidationError", "ValidationError"} & set(schemas)
    paths = spec["paths"]

    def ok_schema(path: str, method: str, status: str = "200") -> dict[str, Any]:
        content = paths[path][method]["responses"][status]["content"]
        schema: dict[str, Any] = content["application/json"]["schema"]
        return schema

    assert ok_schema("/api/v1/jobs/{job_id}", "get") == _ref("JobOut")
    assert ok_schema("/api/v1/jobs/{job_id}", "delete") == _ref("JobOut")
    assert ok_schema("/api/v1/jobs/{job_id}/retry", "post") == _ref("JobOut")
    assert ok_schema("/api/v1/jobs", "get") == _ref("JobPage")
    assert ok_schema("/api/v1/jobs/ingest", "post", "202") == _ref("JobAccepted")
    assert ok_schema("/api/v1/documents", "post", "202") == _ref("UploadAccepted")
    assert ok_schema("/api/v1/documents/{document_id}", "get") == _ref("DocumentOut")
    assert ok_schema("/api/v1/documents/{document_id}/chunks", "get") == _ref("ChunkPage")
    assert ok_schema("/api/v1/search", "post") == _ref("SearchResponse")
    assert schemas["SearchResponse"]["properties"]["results"]["items"] == _ref("HitOut")
    assert schemas["JobPage"]["properties"]["jobs"]["items"] == _ref("JobOut")
    assert schemas["ChunkPage"]["properties"]["chunks"]["items"] == _ref("ChunkOut")
    assert set(schemas["HitOut"]["required"]) == {
        "document_id",
        "chunk_id",
        "source",
        "collection",
        "text",
        "ordinal",
        "page",
        "heading",
        "score",
        "metadata",
    }
    # The traceback is there for admins only: not a required member of an error.
    assert schemas["JobError"]["required"] == ["type", "message"]


def test_every_error_answer_is_a_documented_problem(api: Api) -> None:
    operations = _operations(_spec(api))
    for (method, path), operation in operations.items():
        responses = operation["responses"]
        errors = {status for status in responses if status >= "400"}
        if (method, path) in PUBLIC:
            assert errors <= {"503"}, (method, path)
            continue
        assert {"401", "422", "429"} <= errors, (method, path, errors)
        if ROLES[(method, path)] != "viewer":
            assert "403" in errors, (method, path)
        if "{" in path:
            assert "404" in errors, (method, path)
        for status in errors:
            assert responses[status]["content"] == PROBLEM_CONTENT, (method, path, status)
    upload = operations[("POST", "/api/v1/documents")]["responses"]
    assert {"409", "413", "415", "503"} <= set(upload)
    assert "Retry-After" in upload["503"]["headers"]
    ready = operations[("GET", "/health/ready")]["responses"]["503"]["content"]
    assert ready["application/json"]["schema"] == _ref("ReadinessOut")


def test_an_unsupported_method_gets_405_with_the_allowed_ones(api: Api) -> None:
    paths = _spec(api)["paths"]

    def served_at(url: str) -> set[str]:
        """Methods of every documented path that matches this URL (/api/v1/jobs/ingest
        is also /api/v1/jobs/{job_id}, the job named "ingest")."""
        patterns = {p: re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in paths}
        return {m.upper() for p, rx in patterns.items() if rx.match(url) for m in paths[p]}

    for path in paths:
        url = path.format(document_id="x", job_id="x", source_id="x")
        allowed = served_at(url)
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - allowed):
            response = api.client.request(method, url, headers=api.auth())
            assert_problem(response, 405, "method-not-allowed")
            assert response.headers["allow"] == ", ".join(sorted(allowed)), (method, path)
    assert served_at("/api/v1/jobs/x") == {"GET", "DELETE"}


# --- one job object, CLI and API ---------------------------------------------------------


def _cli(settings: Settings, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "DATABASE_URL"))}
    env["DATABASE_URL"] = settings.database_url
    env["INGEST_INCOMING_DIR"] = str(settings.incoming_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_the_cli_and_the_api_show_the_same_job_object(api: Api, tmp_path: Path) -> None:
    response = api.upload([make_corrupt_pdf(tmp_path, "broken.pdf")])
    [queued] = response.json()["jobs"]
    job = api.wait_job(queued["job_id"])
    assert job["status"] == "failed"
    assert job["error"]["type"] == "rejected"

    # `ingest jobs show` is the admin's view: with the traceback key, even when null.
    as_admin = api.get(f"/api/v1/jobs/{job['job_id']}", "admin").json()
    assert "traceback" in as_admin["error"]
    shown = _cli(api.ctx.settings, "jobs", "show", job["job_id"], "--json")
    assert shown == json.dumps({"jobs": [as_admin]}, ensure_ascii=False) + "\n"

    # `ingest jobs list` is everyone's view: no traceback key at all.
    as_viewer = api.get(f"/api/v1/jobs/{job['job_id']}", "viewer").json()
    assert set(as_viewer["error"]) == {"type", "message"}
    listed = json.loads(_cli(api.ctx.settings, "jobs", "list", "--kind", "ingest", "--json"))
    assert listed["jobs"] == [as_viewer]
    assert list(listed["jobs"][0]) == list(as_viewer)
