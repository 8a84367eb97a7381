"""/api/v1/sources as a client sees it: admins add, sync and remove; viewers read;
errors are problem+json. A real app with its inline worker on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingest.client import Client
from ingest.errors import PermissionDenied
from ingest.settings import Settings
from tests.conftest import CountingEmbedder
from tests.support.api import Api, api_settings, assert_problem, running_api


@pytest.fixture
def api(tmp_path: Path, embedder: CountingEmbedder) -> Iterator[Api]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ingest.db'}",
        incoming_dir=tmp_path / "incoming",
        source_roots=str(tmp_path / "shares"),
    )
    with running_api(api_settings(settings), embedder) as running:
        yield running


def test_admin_adds_syncs_and_removes_viewer_reads(api: Api, tmp_path: Path) -> None:
    folder = tmp_path / "shares" / "docs"
    folder.mkdir(parents=True)
    (folder / "keys.txt").write_text("Rotating the signing keys happens every ninety days.")
    body = {"location": str(folder), "collection": "team", "every": "15m", "include": ["*.txt"]}

    assert_problem(api.post("/api/v1/sources", "viewer", json=body), 403, "forbidden")
    assert_problem(api.post("/api/v1/sources", "editor", json=body), 403, "forbidden")
    added = api.post("/api/v1/sources", "admin", json=body)
    assert added.status_code == 201, added.text
    source = added.json()["source"]
    source_id = source["source_id"]
    assert (source["location"], source["interval_seconds"]) == (str(folder), 900)
    first = api.wait_job(added.json()["job"]["job_id"])
    assert first["status"] == "succeeded", first
    assert first["result"]["submitted"] == 1

    assert_problem(api.post("/api/v1/sources", "admin", json=body), 409, "source-exists")
    outside = {**body, "location": str(tmp_path)}
    assert_problem(api.post("/api/v1/sources", "admin", json=outside), 400, "source-not-allowed")
    relative = {**body, "location": "shares/docs"}
    assert_problem(api.post("/api/v1/sources", "admin", json=relative), 400, "source-not-allowed")
    bad = {**body, "every": "soon"}
    assert_problem(api.post("/api/v1/sources", "admin", json=bad), 422, "validation-error")

    listed = api.get("/api/v1/sources", "viewer").json()["sources"]
    assert [s["source_id"] for s in listed] == [source_id]
    shown = api.get(f"/api/v1/sources/{source_id}", "viewer").json()
    assert shown["last_sync"]["status"] == "succeeded"
    assert shown["last_sync"]["report"]["listed"] == 1

    assert_problem(api.post(f"/api/v1/sources/{source_id}/sync", "viewer"), 403, "forbidden")
    synced = api.post(f"/api/v1/sources/{source_id}/sync", "admin")
    assert synced.status_code == 202, synced.text
    again = api.wait_job(synced.json()["job_id"])
    assert (again["result"]["submitted"], again["result"]["unchanged"]) == (0, 1)

    assert_problem(api.delete(f"/api/v1/sources/{source_id}", "viewer"), 403, "forbidden")
    assert api.delete(f"/api/v1/sources/{source_id}", "admin").status_code == 204
    assert_problem(api.get(f"/api/v1/sources/{source_id}", "viewer"), 404, "not-found")
    assert_problem(api.delete(f"/api/v1/sources/{source_id}", "admin"), 404, "not-found")
    # Its documents stay.
    documents = api.get("/api/v1/documents", "viewer", params={"collection": "team"}).json()
    assert documents["total"] == 1


def test_python_client_sources(api: Api, tmp_path: Path) -> None:
    folder = tmp_path / "shares" / "docs"
    folder.mkdir(parents=True)
    (folder / "keys.txt").write_text("Rotating the signing keys happens every ninety days.")
    transport = httpx.MockTransport(lambda request: _through_app(api, request))
    with (
        Client("http://testserver", api.keys["admin"], transport=transport) as admin,
        Client("http://testserver", api.keys["viewer"], transport=transport) as viewer,
    ):
        added = admin.sources.add(str(folder), collection="team", every="15m")
        assert added.source.interval_seconds == 900
        first = admin.wait([added.job.job_id], timeout=120)[0]
        assert first.result is not None
        assert first.result["submitted"] == 1
        assert [s.source_id for s in viewer.sources.list()] == [added.source.source_id]
        shown = viewer.sources.get(added.source.source_id)
        assert shown.last_sync is not None
        assert shown.last_sync.status == "succeeded"
        with pytest.raises(PermissionDenied):
            viewer.sources.sync(added.source.source_id)
        job = admin.sources.sync(added.source.source_id)
        assert admin.wait([job.job_id], timeout=120)[0].status == "succeeded"
        admin.sources.remove(added.source.source_id)
        assert viewer.sources.list() == []


def _through_app(api: Api, request: httpx.Request) -> httpx.Response:
    """The client's request answered by the app in this process (its TestClient)."""
    answer = api.client.request(
        request.method, str(request.url), headers=request.headers, content=request.content
    )
    return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
