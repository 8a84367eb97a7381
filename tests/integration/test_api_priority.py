"""A client sets a job's priority on uploads and on ingest-by-path."""

from __future__ import annotations

import json
from pathlib import Path

from ingest.settings import Settings
from tests.conftest import CountingEmbedder
from tests.fixtures_docs import make_txt
from tests.support.api import api_settings, assert_problem, running_api


def test_uploads_and_ingest_by_path_take_a_priority(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    with running_api(api_settings(settings), embedder) as api:
        doc = make_txt(tmp_path / "src", "a.txt", "Backups are copied to cold storage.")
        files = [("files", (doc.name, doc.read_bytes(), "text/plain"))]

        accepted = api.post("/api/v1/documents", "editor", files=files, data={"priority": "7"})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["jobs"][0]["job_id"]
        assert api.get(f"/api/v1/jobs/{job_id}").json()["priority"] == 7

        refused = api.post("/api/v1/documents", "editor", files=files, data={"priority": "101"})
        assert_problem(refused, 422, "validation-error")

        make_txt(api.ctx.settings.incoming_dir, "b.txt", "The relay restarts at noon.")
        body = {"document_paths": ["b.txt"], "priority": -5, "metadata": {}}
        by_path = api.post("/api/v1/jobs/ingest", json=body)
        assert by_path.status_code == 202, by_path.text
        assert by_path.json()["jobs"][0]["priority"] == -5

        out_of_range = api.post("/api/v1/jobs/ingest", json={**body, "priority": -101})
        body_problem = assert_problem(out_of_range, 422, "validation-error")
        assert "priority" in json.dumps(body_problem)
