"""Hostile and careless input, on both backends: each is refused with a 4xx problem
that names what was wrong, nothing of the refused request is stored, and the
service keeps answering everyone else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx import Response

from ingest.settings import Settings
from tests.conftest import CountingEmbedder
from tests.fixtures_docs import make_txt
from tests.support.api import Api, api_settings, assert_problem, running_api

TEXT = "Signing keys are rotated every ninety days by the security team."


@pytest.fixture
def api(settings: Settings, embedder: CountingEmbedder) -> Iterator[Api]:
    with running_api(api_settings(settings, max_upload_bytes=1000), embedder) as running:
        yield running


def upload(
    api: Api,
    files: list[tuple[str, bytes]],
    *,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    parts = [("files", (name, content, "text/plain")) for name, content in files]
    return api.client.post(
        "/api/v1/documents",
        files=parts,
        data=data or {},
        headers={**api.auth("editor"), **(headers or {})},
    )


def fields(problem: dict[str, Any]) -> list[str]:
    return [e["field"] for e in problem["errors"]]


def queued(response: Response) -> list[tuple[str, str, str]]:
    """(job, document, filename) of each file of an accepted upload; the status moves on."""
    return [(j["job_id"], j["document_id"], j["filename"]) for j in response.json()["jobs"]]


def nothing_stored(api: Api) -> None:
    """No document row, no job, no staged bytes."""
    assert api.get("/api/v1/documents").json()["total"] == 0
    assert api.get("/api/v1/jobs", params={"kind": "ingest"}).json()["jobs"] == []
    incoming = api.ctx.settings.incoming_dir
    assert not incoming.exists() or list(incoming.iterdir()) == []


# --- defect 3: NUL characters ------------------------------------------------------------


def test_nul_characters_are_refused_in_every_string(api: Api) -> None:
    ok = [("a.txt", TEXT.encode())]
    refused = [
        (upload(api, ok, data={"collection": "a\x00b"}), "collection"),
        (upload(api, ok, data={"metadata": json.dumps({"s": "a\x00b"})}), "metadata.s"),
        (upload(api, ok, data={"metadata": json.dumps({"a": [{"b": "\x00"}]})}), "metadata.a.0"),
        (upload(api, ok, data={"metadata": json.dumps({"k\x00": 1})}), "metadata"),
        (api.get("/api/v1/documents", params={"collection": "\x00"}), "collection"),
        (api.get("/api/v1/documents", params={"source_prefix": "\x00"}), "source_prefix"),
        (api.get("/api/v1/jobs", params={"kind": "\x00"}), "kind"),
        (api.get("/api/v1/jobs", params={"queue": "\x00"}), "queue"),
        (api.get("/api/v1/documents/%00"), "document_id"),
        (api.get("/api/v1/documents/%00/chunks"), "document_id"),
        (api.get("/api/v1/jobs/%00"), "job_id"),
        (api.post("/api/v1/search", json={"query": "x", "collection": "\x00"}), "collection"),
        (api.post("/api/v1/search", json={"query": "x\x00"}), "query"),
        (api.post("/api/v1/chat", json={"message": "hi\x00"}), "message"),
        (
            api.post("/api/v1/jobs/ingest", json={"document_paths": ["a"], "collection": "\x00"}),
            "collection",
        ),
    ]
    for response, field in refused:
        problem = assert_problem(response, 422, "validation-error")
        assert any(f.startswith(field) for f in fields(problem)), (field, problem)
    nul_key = api.post("/api/v1/search", json={"query": "x", "filters": {"\x00": 1}})
    assert_problem(nul_key, 422, "validation-error")
    nul_value = api.post("/api/v1/search", json={"query": "x", "filters": {"team": "\x00"}})
    assert_problem(nul_value, 422, "validation-error")
    nothing_stored(api)
    # A refused mutating call is still audited, NUL and all.
    assert_problem(api.delete("/api/v1/documents/a%00b", "editor"), 422, "validation-error")
    entries = api.get("/api/v1/audit").json()["entries"]
    deletes = [e for e in entries if e["action"] == "DELETE /api/v1/documents/{document_id}"]
    assert [(e["status_code"], e["outcome"], e["target"]) for e in deletes] == [
        (422, "error", "a\ufffdb")
    ]


def test_metadata_filtered_search_keeps_working_after_hostile_uploads(api: Api) -> None:
    """A NUL in one upload's metadata must not break every filtered search."""
    hostile = upload(api, [("h.txt", TEXT.encode())], data={"metadata": '{"s": "a\\u0000b"}'})
    assert_problem(hostile, 422, "validation-error")
    good = upload(api, [("g.txt", TEXT.encode())], data={"metadata": '{"team": "security"}'})
    assert good.status_code == 202, good.text
    assert api.wait_job(good.json()["jobs"][0]["job_id"])["status"] == "succeeded"
    for filters in ({"team": "security"}, {"s": "a"}):
        response = api.post("/api/v1/search", "viewer", json={"query": "keys", "filters": filters})
        assert response.status_code == 200, response.text
    hits = api.post("/api/v1/search", json={"query": "keys", "filters": {"team": "security"}})
    assert [h["source"] for h in hits.json()["results"]] == ["upload://default/g.txt"]


def test_filters_of_another_type_than_the_stored_value_match_nothing(api: Api) -> None:
    """PostgreSQL cast a stored "security" to INTEGER for `{"team": 1}`: a 500."""
    meta = {"team": "security", "year": 2024, "ratio": 1.5, "on": True, "tags": ["a"]}
    response = upload(api, [("m.txt", TEXT.encode())], data={"metadata": json.dumps(meta)})
    assert api.wait_job(response.json()["jobs"][0]["job_id"])["status"] == "succeeded"

    def sources(filters: dict[str, Any]) -> list[str]:
        found = api.post("/api/v1/search", json={"query": "keys", "filters": filters})
        assert found.status_code == 200, (filters, found.text)
        return [h["source"] for h in found.json()["results"]]

    for mismatch in (
        {"team": 1},
        {"team": True},
        {"year": "x"},
        {"year": "2024"},
        {"year": True},
        {"ratio": 1},
        {"on": 1},
        {"tags": "a"},
        {'a"b': 1},
        {"\\": "x"},
        {"$.team": "security"},
    ):
        assert sources(mismatch) == [], mismatch
    for match in ({"team": "security"}, {"year": 2024}, {"year": 2024.0}, {"ratio": 1.5}):
        assert sources(match) == ["upload://default/m.txt"], match
    assert sources({"on": True, "year": 2024}) == ["upload://default/m.txt"]


# --- defect 4: non-finite numbers, the longest Idempotency-Key --------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_are_refused(api: Api, literal: str) -> None:
    ok = [("a.txt", TEXT.encode())]
    for meta in (f'{{"n": {literal}}}', f'{{"a": {{"b": [{literal}]}}}}'):
        problem = assert_problem(upload(api, ok, data={"metadata": meta}), 422, "validation-error")
        assert fields(problem)[0].startswith("metadata"), problem
    headers = {**api.auth(), "Content-Type": "application/json"}
    for url, raw in (
        ("/api/v1/search", f'{{"query": "x", "filters": {{"n": {literal}}}}}'),
        ("/api/v1/jobs/ingest", f'{{"document_paths": ["a"], "metadata": {{"n": {literal}}}}}'),
    ):
        response = api.client.post(url, content=raw.encode(), headers=headers)
        assert_problem(response, 422, "validation-error")
    nothing_stored(api)


def test_an_idempotency_key_of_the_documented_maximum_length(api: Api) -> None:
    key = "k" * 200
    first = upload(api, [("a.txt", TEXT.encode())], headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    again = upload(api, [("a.txt", TEXT.encode())], headers={"Idempotency-Key": key})
    assert again.status_code == 202, again.text
    assert queued(again) == queued(first)
    too_long = upload(api, [("a.txt", TEXT.encode())], headers={"Idempotency-Key": key + "k"})
    assert fields(assert_problem(too_long, 422, "validation-error")) == ["idempotency-key"]
    assert api.wait_job(first.json()["jobs"][0]["job_id"])["status"] == "succeeded"
    assert api.get("/api/v1/documents").json()["total"] == 1


# --- defect 5: deeply nested metadata --------------------------------------------------------


def test_deeply_nested_metadata_is_refused(api: Api) -> None:
    ok = [("a.txt", TEXT.encode())]
    huge = "[" * 100_000 + "]" * 100_000
    problem = assert_problem(upload(api, ok, data={"metadata": huge}), 422, "validation-error")
    assert fields(problem) == ["metadata"]
    for deep in ('{"a": ' + "[" * 32 + "]" * 32 + "}", '{"a": ' * 33 + "1" + "}" * 33):
        problem = assert_problem(upload(api, ok, data={"metadata": deep}), 422, "validation-error")
        assert "nested deeper than 32" in problem["detail"], problem
    nothing_stored(api)
    deepest = '{"a": ' + "[" * 31 + "]" * 31 + "}"
    accepted = upload(api, ok, data={"metadata": deepest})
    assert accepted.status_code == 202, accepted.text


# --- defect 6: a path component longer than a file name may be -----------------------------


def test_ingest_by_path_with_an_over_long_component_is_not_found(api: Api) -> None:
    make_txt(api.ctx.settings.incoming_dir / "c", "real.txt", TEXT)  # paths resolve past it
    for path in ("a" * 300 + "/b.txt", "b" * 256 + ".txt", "c/" * 2000 + "d.txt"):
        response = api.post("/api/v1/jobs/ingest", "editor", json={"document_paths": [path]})
        assert_problem(response, 404, "file-not-found")
    assert api.get("/api/v1/jobs", params={"kind": "ingest"}).json()["jobs"] == []


# --- defect 7: a multi-file upload is accepted whole or not at all ------------------------


def test_a_multi_file_upload_is_all_or_nothing(api: Api) -> None:
    ok = ("ok.txt", TEXT.encode())
    assert_problem(upload(api, [ok, ("big.txt", b"x" * 2000)]), 413, "payload-too-large")
    nothing_stored(api)
    png = ("image.bmp", b"BM" + bytes(64))  # no parser reads .bmp
    assert_problem(upload(api, [ok, png]), 415, "unsupported-media-type")
    nothing_stored(api)
    binary = ("notes.txt", b"abc\x00\x01\x02" * 10)
    assert_problem(upload(api, [ok, binary]), 415, "content-mismatch")
    nothing_stored(api)

    both = upload(api, [ok, ("second.txt", b"Backups are copied to cold storage nightly.")])
    assert both.status_code == 202, both.text
    jobs = both.json()["jobs"]
    assert [j["filename"] for j in jobs] == ["ok.txt", "second.txt"]
    assert {api.wait_job(j["job_id"])["status"] for j in jobs} == {"succeeded"}
    assert api.get("/api/v1/documents").json()["total"] == 2


# --- defect 10: the OpenAPI contract ---------------------------------------------------------


def test_an_empty_status_filter_is_refused_as_documented(api: Api) -> None:
    empty = api.get("/api/v1/jobs", params={"status": ""})
    assert fields(assert_problem(empty, 422, "validation-error")) == ["status.0"]
    assert_problem(api.get("/api/v1/documents", params={"status": ""}), 422, "validation-error")
    spec = api.client.get("/api/v1/openapi.json").json()
    parameters = spec["paths"]["/api/v1/jobs"]["get"]["parameters"]
    [status] = [p for p in parameters if p["name"] == "status"]
    item = status["schema"]["anyOf"][0]["items"]
    if "$ref" in item:  # the statuses are one named schema, shared by every route
        item = spec["components"]["schemas"][item["$ref"].rsplit("/", 1)[1]]
    assert item["enum"] == ["queued", "running", "succeeded", "failed", "cancelled", "dead"]
    listed = api.get("/api/v1/jobs", params={"status": ["queued", "failed"]})
    assert listed.status_code == 200, listed.text


def test_user_metadata_cannot_replace_the_recorded_filename(api: Api) -> None:
    ok = [("a.txt", TEXT.encode())]
    evil = upload(api, ok, data={"metadata": json.dumps({"filename": "evil.exe", "x": 1})})
    problem = assert_problem(evil, 422, "validation-error")
    assert fields(problem) == ["metadata.filename"]
    make_txt(api.ctx.settings.incoming_dir, "b.txt", TEXT)
    body = {"document_paths": ["b.txt"], "metadata": {"filename": "evil.exe"}}
    by_path = assert_problem(api.post("/api/v1/jobs/ingest", json=body), 422, "validation-error")
    assert fields(by_path) == ["metadata.filename"]
    assert api.get("/api/v1/documents").json()["total"] == 0

    nested = upload(api, ok, data={"metadata": json.dumps({"file": {"filename": "ok"}})})
    assert nested.status_code == 202, nested.text
    assert api.wait_job(nested.json()["jobs"][0]["job_id"])["status"] == "succeeded"
    doc = api.get(f"/api/v1/documents/{nested.json()['jobs'][0]['document_id']}").json()
    assert doc["metadata"] == {"filename": "a.txt", "file": {"filename": "ok"}}


def test_an_empty_collection_field_is_refused(api: Api) -> None:
    empty = upload(api, [("a.txt", TEXT.encode())], data={"collection": ""})
    assert fields(assert_problem(empty, 422, "validation-error")) == ["collection"]
    nothing_stored(api)
    absent = upload(api, [("a.txt", TEXT.encode())])
    assert absent.status_code == 202, absent.text
    doc = api.get(f"/api/v1/documents/{absent.json()['jobs'][0]['document_id']}").json()
    assert doc["collection"] == "default"


def test_a_long_filename_keeps_its_extension(api: Api) -> None:
    name = "quarterly-report-" + "x" * 983 + ".txt"
    response = upload(api, [(name, TEXT.encode())])
    assert response.status_code == 202, response.text
    [job] = response.json()["jobs"]
    assert job["filename"].endswith(".txt")
    assert job["filename"].startswith("quarterly-report-")
    assert len(job["filename"]) == 200
    assert api.wait_job(job["job_id"])["status"] == "succeeded"
    doc = api.get(f"/api/v1/documents/{job['document_id']}").json()
    assert doc["source"] == f"upload://default/{job['filename']}"


# --- idempotency: the same key for another request -------------------------------------------


def test_an_idempotency_key_reused_for_another_request_is_refused(api: Api) -> None:
    key = {"Idempotency-Key": "upload-2024-06-01"}
    a = ("a.txt", TEXT.encode())
    first = upload(api, [a], data={"metadata": '{"team": "security"}'}, headers=key)
    assert first.status_code == 202, first.text
    [job] = first.json()["jobs"]

    # The same request again: the original job, nothing new.
    same = upload(api, [a], data={"metadata": '{"team": "security"}'}, headers=key)
    assert same.status_code == 202, same.text
    assert queued(same) == queued(first)

    # Another file, other bytes, another collection, other metadata: refused.
    for files, data in (
        ([("b.txt", b"Backups run nightly.")], {"metadata": '{"team": "security"}'}),
        ([("a.txt", b"Other bytes, same name.")], {"metadata": '{"team": "security"}'}),
        ([a], {"metadata": '{"team": "security"}', "collection": "other"}),
        ([a], {"metadata": '{"team": "infra"}'}),
        ([a, ("b.txt", b"Backups run nightly.")], {"metadata": '{"team": "security"}'}),
    ):
        reused = upload(api, files, data=data, headers=key)
        problem = assert_problem(reused, 409, "idempotency-key-reused")
        assert "Idempotency-Key" in problem["detail"]

    assert api.wait_job(job["job_id"])["status"] == "succeeded"
    docs = api.get("/api/v1/documents").json()["documents"]
    assert [(d["source"], d["status"]) for d in docs] == [("upload://default/a.txt", "ready")]
    ingest_jobs = api.get("/api/v1/jobs", params={"kind": "ingest"}).json()["jobs"]
    assert [j["job_id"] for j in ingest_jobs] == [job["job_id"]]
    # No staged bytes of the refused requests remain (only the accepted job's folder).
    staged = [p.name for p in api.ctx.settings.incoming_dir.iterdir()]
    assert staged in ([], [job["job_id"]])


def test_concurrent_uploads_with_one_key_create_one_set_of_jobs(api: Api, tmp_path: Path) -> None:
    """Submitted twice at once (a client retrying on a timeout): one job, one document."""
    from concurrent.futures import ThreadPoolExecutor

    key = {"Idempotency-Key": "retry-me"}
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda _: upload(api, [("a.txt", TEXT.encode())], headers=key), range(4))
        )
    assert {r.status_code for r in answers} == {202}, [r.text for r in answers]
    assert len({tuple(queued(r)) for r in answers}) == 1
    [job] = answers[0].json()["jobs"]
    assert api.wait_job(job["job_id"])["status"] == "succeeded"
    assert api.get("/api/v1/documents").json()["total"] == 1
    assert len(api.get("/api/v1/jobs", params={"kind": "ingest"}).json()["jobs"]) == 1
