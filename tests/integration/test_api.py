"""The HTTP API end to end, as a client sees it: a real app (inline worker and
scheduler threads) on a real SQLite file, driven through Starlette's TestClient."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx import Response
from pydantic import SecretStr

from ingest.models import HitOut
from ingest.settings import Settings
from ingest.store import NewJob
from tests.conftest import CountingEmbedder
from tests.fixtures_docs import make_corrupt_pdf, make_md, make_pdf, make_txt
from tests.support.api import (
    TERMINAL,
    Api,
    api_settings,
    assert_problem,
    read_sse,
    running_api,
)
from tests.support.fake_openai import API_KEY, FakeOpenAI
from tests.support.processes import RedisServer

HIT_KEYS = {
    "document_id",
    "chunk_id",
    "source",
    "collection",
    "text",
    "ocr",
    "ordinal",
    "page",
    "heading",
    "score",
    "metadata",
}
KEYS_ROTATION = (
    "Rotating the signing keys happens every ninety days through the vault console. "
    "The security team approves each rotation and records it in the change log."
)
BACKUPS = (
    "Backups of the ledger database are copied to cold storage each night at two o'clock. "
    "Restores are rehearsed every quarter by the operations team."
)
ONBOARDING = (
    "The onboarding checklist covers laptops, badges, and access to the payroll system. "
    "New starters meet their buddy on the first morning."
)


@pytest.fixture
def api(settings: Settings, embedder: CountingEmbedder) -> Iterator[Api]:
    with running_api(api_settings(settings), embedder) as running:
        yield running


# --- documents: upload, poll, list, read, search, delete ---------------------------------


def test_upload_poll_list_search_and_delete(api: Api, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = [
        make_txt(src, "keys.txt", KEYS_ROTATION),
        make_md(src, "backups.md", f"# Backups\n\n{BACKUPS}\n"),
        make_pdf(src, "onboarding.pdf", [ONBOARDING]),
    ]
    response = api.upload(files, metadata={"team": "security", "year": 2024})
    assert response.status_code == 202, response.text
    queued = response.json()["jobs"]
    assert [j["filename"] for j in queued] == ["keys.txt", "backups.md", "onboarding.pdf"]
    for j in queued:
        assert set(j) == {"job_id", "document_id", "filename", "status"}
        assert j["status"] == "queued"
        assert j["job_id"]
        assert j["document_id"]

    for j in queued:
        job = api.wait_job(j["job_id"])
        assert job["status"] == "succeeded", job
        assert job["document_id"] == j["document_id"]
        assert job["error"] is None

    ids = {j["filename"]: j["document_id"] for j in queued}

    # Listing: filters and pagination, with the total of all matches.
    page = api.get("/api/v1/documents", "viewer", params={"collection": "handbook"}).json()
    assert page["total"] == 3
    assert {d["document_id"] for d in page["documents"]} == set(ids.values())
    assert api.get("/api/v1/documents", params={"collection": "other"}).json()["total"] == 0
    ready = api.get("/api/v1/documents", params={"status": "ready"}).json()
    assert ready["total"] == 3
    assert api.get("/api/v1/documents", params={"status": "failed"}).json()["total"] == 0
    first = api.get("/api/v1/documents", params={"limit": 2, "offset": 0}).json()
    rest = api.get("/api/v1/documents", params={"limit": 2, "offset": 2}).json()
    assert (first["total"], first["limit"], first["offset"]) == (3, 2, 0)
    assert (len(first["documents"]), len(rest["documents"]), rest["total"]) == (2, 1, 3)
    paged = {d["document_id"] for d in first["documents"] + rest["documents"]}
    assert paged == set(ids.values())
    assert_problem(
        api.get("/api/v1/documents", params={"status": "bogus"}), 422, "validation-error"
    )

    # One document: ready, hashed, chunked, with its last job.
    doc = api.get(f"/api/v1/documents/{ids['keys.txt']}", "viewer").json()
    assert doc["status"] == "ready"
    assert doc["collection"] == "handbook"
    assert doc["source"] == "upload://handbook/keys.txt"
    assert re.fullmatch(r"[0-9a-f]{64}", doc["content_hash"])
    assert doc["chunk_count"] >= 1
    assert doc["metadata"]["team"] == "security"
    assert doc["metadata"]["year"] == 2024
    assert doc["last_job"]["job_id"] == queued[0]["job_id"]
    assert doc["last_job"]["status"] == "succeeded"

    chunks = api.get(f"/api/v1/documents/{ids['keys.txt']}/chunks", "viewer").json()
    assert chunks["document_id"] == ids["keys.txt"]
    assert len(chunks["chunks"]) == doc["chunk_count"]
    assert "signing keys" in " ".join(c["text"] for c in chunks["chunks"])
    assert [c["ordinal"] for c in chunks["chunks"]] == list(range(len(chunks["chunks"])))
    pdf_chunks = api.get(f"/api/v1/documents/{ids['onboarding.pdf']}/chunks").json()["chunks"]
    assert pdf_chunks[0]["page"] == 1

    # Search: the hits a client gets are the ones `ingest search --json` prints.
    query = "how often are signing keys rotated"
    body = {"query": query, "k": 3, "collection": "handbook"}
    response = api.post("/api/v1/search", "viewer", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results
    for hit in results:
        assert set(hit) == HIT_KEYS
        assert isinstance(hit["score"], float)
    assert results[0]["document_id"] == ids["keys.txt"]
    assert results[0]["source"] == "upload://handbook/keys.txt"
    assert "signing keys" in results[0]["text"]
    found = api.ctx.searcher.search(query, k=3, collection="handbook")
    cli_hits = [HitOut.from_hit(h).model_dump(mode="json") for h in found]
    assert [h["chunk_id"] for h in results] == [h["chunk_id"] for h in cli_hits]
    assert [set(h) for h in cli_hits] == [HIT_KEYS] * len(cli_hits)

    filtered = api.post(
        "/api/v1/search",
        json={"query": "signing keys", "k": 5, "filters": {"team": "nobody"}},
    ).json()["results"]
    assert filtered == []
    matched = api.post(
        "/api/v1/search",
        json={"query": "signing keys", "k": 5, "filters": {"team": "security"}},
    ).json()["results"]
    assert {h["document_id"] for h in matched} <= set(ids.values())
    assert matched
    elsewhere = api.post("/api/v1/search", json={"query": "signing keys", "collection": "x"})
    assert elsewhere.json()["results"] == []

    # Delete: 204, then 404, and its chunks no longer come back from search.
    response = api.delete(f"/api/v1/documents/{ids['keys.txt']}", "viewer")
    assert_problem(response, 403, "forbidden")
    response = api.delete(f"/api/v1/documents/{ids['keys.txt']}", "editor")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(api.get(f"/api/v1/documents/{ids['keys.txt']}"), 404, "not-found")
    assert_problem(api.get(f"/api/v1/documents/{ids['keys.txt']}/chunks"), 404, "not-found")
    assert_problem(api.delete(f"/api/v1/documents/{ids['keys.txt']}"), 404, "not-found")
    after = api.post("/api/v1/search", json={"query": "signing keys vault rotation", "k": 10})
    assert ids["keys.txt"] not in {h["document_id"] for h in after.json()["results"]}
    for mode in ("keyword", "vector"):
        hits = api.post("/api/v1/search", json={"query": "signing keys", "mode": mode}).json()
        assert ids["keys.txt"] not in {h["document_id"] for h in hits["results"]}, mode
    assert api.get("/api/v1/documents").json()["total"] == 2


# --- jobs: submit by path, path traversal, events, cancel/retry --------------------------


def test_ingest_by_path_and_follow_its_events(api: Api) -> None:
    incoming = api.ctx.settings.incoming_dir
    make_txt(incoming / "sub", "file.txt", BACKUPS)
    body = {"document_paths": ["sub/file.txt"], "collection": "c", "metadata": {"src": "share"}}
    response = api.post("/api/v1/jobs/ingest", "editor", json=body)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"
    job_id = accepted["job_id"]
    assert [j["job_id"] for j in accepted["jobs"]] == [job_id]

    # Follow it over Server-Sent Events until the stream ends by itself.
    with api.client.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=api.auth()) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = read_sse(stream)
    names = [name for name, _ in events]
    assert names[-1] == "end", names
    assert set(names[:-1]) == {"job"}, names
    statuses = [json.loads(data)["status"] for name, data in events if name == "job"]
    assert statuses[-1] == "succeeded", statuses
    assert all(s not in TERMINAL for s in statuses[:-1]), statuses
    assert all(json.loads(d)["job_id"] == job_id for n, d in events if n == "job")
    assert json.loads(events[-1][1]) == {"job_id": job_id, "status": "succeeded"}

    job = api.wait_job(job_id)
    assert job["status"] == "succeeded"
    doc = api.get(f"/api/v1/documents/{job['document_id']}").json()
    assert (doc["status"], doc["collection"]) == ("ready", "c")
    assert doc["source"] == "incoming://sub/file.txt"
    assert (incoming / "sub" / "file.txt").exists()

    # A finished job streams its final state at once, and an unknown one is a 404.
    with api.client.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=api.auth()) as again:
        assert [n for n, _ in read_sse(again)] == ["job", "end"]
    assert_problem(api.get("/api/v1/jobs/nope/events"), 404, "not-found")

    missing = api.post("/api/v1/jobs/ingest", json={"document_paths": ["sub/absent.txt"]})
    assert_problem(missing, 404, "file-not-found")


def test_ingest_by_path_refuses_paths_outside_incoming(api: Api, tmp_path: Path) -> None:
    incoming = api.ctx.settings.incoming_dir
    make_txt(incoming / "sub", "file.txt", BACKUPS)
    secret = make_txt(tmp_path / "outside", "secret.txt", "a file outside the incoming folder")
    (incoming / "escape.txt").symlink_to(secret)
    (incoming / "escape_dir").symlink_to(secret.parent, target_is_directory=True)
    (incoming / "sub" / "inside_link.txt").symlink_to(incoming / "sub" / "file.txt")
    rejected = [
        "../x",
        "/etc/passwd",
        str(secret),
        "sub/../../x",
        "sub/../../outside/secret.txt",
        "escape.txt",
        "escape_dir/secret.txt",
        ".",
        "sub/..",
    ]
    for path in rejected:
        response = api.post("/api/v1/jobs/ingest", "editor", json={"document_paths": [path]})
        body = assert_problem(response, 400, "path-outside-incoming-dir")
        assert path in body["detail"], body
    # One bad path refuses the whole request: nothing is queued.
    mixed = {"document_paths": ["sub/file.txt", "escape.txt"]}
    assert_problem(api.post("/api/v1/jobs/ingest", json=mixed), 400, "path-outside-incoming-dir")
    assert api.get("/api/v1/jobs", params={"kind": "ingest"}).json()["jobs"] == []

    # A symlink that stays inside the folder is fine.
    response = api.post("/api/v1/jobs/ingest", json={"document_paths": ["sub/inside_link.txt"]})
    assert response.status_code == 202, response.text
    assert api.wait_job(response.json()["job_id"])["status"] == "succeeded"


def test_cancel_and_retry(api: Api, tmp_path: Path) -> None:
    src = tmp_path / "src"
    good = make_txt(src, "good.txt", ONBOARDING)
    corrupt = make_corrupt_pdf(src, "broken.pdf")
    queued = api.upload([good, corrupt]).json()["jobs"]
    done = api.wait_job(queued[0]["job_id"])
    failed = api.wait_job(queued[1]["job_id"])
    assert done["status"] == "succeeded"
    assert failed["status"] == "failed", failed
    assert failed["error"]["type"] == "rejected"
    assert failed["error"]["message"]
    doc = api.get(f"/api/v1/documents/{queued[1]['document_id']}").json()
    assert doc["status"] == "failed"
    assert doc["error"]
    failed_docs = api.get("/api/v1/documents", params={"status": "failed"}).json()
    assert [d["document_id"] for d in failed_docs["documents"]] == [queued[1]["document_id"]]

    finished = api.delete(f"/api/v1/jobs/{done['job_id']}", "editor")
    assert_problem(finished, 409, "job-finished")
    not_retryable = api.post(f"/api/v1/jobs/{done['job_id']}/retry", "editor")
    assert_problem(not_retryable, 409, "job-not-retryable")
    assert_problem(api.post(f"/api/v1/jobs/{failed['job_id']}/retry", "viewer"), 403, "forbidden")
    assert_problem(api.post("/api/v1/jobs/nope/retry"), 404, "not-found")
    assert_problem(api.delete("/api/v1/jobs/nope"), 404, "not-found")

    retried = api.post(f"/api/v1/jobs/{failed['job_id']}/retry", "editor")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "queued"
    assert retried.json()["job_id"] == failed["job_id"]
    again = api.wait_job(failed["job_id"])
    assert again["status"] == "failed"
    assert again["error"]["type"] == "rejected"

    # A job that has not started can be cancelled, and then retried.
    later = api.ctx.ledger.submit(NewJob(kind="noop", payload={}, not_before=time.time() + 3600))
    cancelled = api.delete(f"/api/v1/jobs/{later.id}", "editor")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert_problem(api.delete(f"/api/v1/jobs/{later.id}"), 409, "job-finished")
    requeued = api.post(f"/api/v1/jobs/{later.id}/retry")
    assert requeued.json()["status"] == "queued"
    assert api.wait_job(later.id)["status"] == "succeeded"

    listed = api.get("/api/v1/jobs", "viewer", params={"status": ["failed"]}).json()["jobs"]
    assert [j["job_id"] for j in listed] == [failed["job_id"]]
    assert_problem(api.get("/api/v1/jobs", params={"status": "nope"}), 422, "validation-error")


# --- chat -----------------------------------------------------------------------------


def test_chat_streams_tokens_then_an_answer_with_citations(api: Api, tmp_path: Path) -> None:
    src = tmp_path / "src"
    queued = api.upload(
        [make_txt(src, "keys.txt", KEYS_ROTATION), make_txt(src, "backups.txt", BACKUPS)]
    ).json()["jobs"]
    for j in queued:
        assert api.wait_job(j["job_id"])["status"] == "succeeded"
    ids = {j["document_id"] for j in queued}

    def chat(message: str, session_id: str) -> list[tuple[str, str]]:
        body = {"message": message, "session_id": session_id}
        with api.client.stream("POST", "/api/v1/chat", headers=api.auth("viewer"), json=body) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            return read_sse(r)

    events = chat("How often are the signing keys rotated?", "session-1")
    names = [name for name, _ in events]
    assert names[-1] == "done", names
    assert names.count("token") >= 1
    assert set(names[:-1]) == {"token"}, names
    tokens = "".join(json.loads(data)["text"] for name, data in events if name == "token")
    done = json.loads(events[-1][1])
    assert done["session_id"] == "session-1"
    assert done["answer"] == tokens
    assert done["answer"].strip()
    assert done["history_messages"] == 0
    assert done["citations"]
    for citation in done["citations"]:
        assert citation["document_id"] in ids
        assert citation["source"].startswith("upload://handbook/")
    assert "keys.txt" in " ".join(c["source"] for c in done["citations"])

    followup = json.loads(chat("And the backups?", "session-1")[-1][1])
    assert followup["history_messages"] == 2
    other = json.loads(chat("And the backups?", "session-2")[-1][1])
    assert other["history_messages"] == 0

    assert_problem(api.post("/api/v1/chat", json={"message": ""}), 422, "validation-error")
    bad_session = api.post("/api/v1/chat", json={"message": "hi", "session_id": "a b"})
    assert_problem(bad_session, 422, "validation-error")


def test_chat_remembers_in_redis_and_still_answers_while_redis_is_down(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        with running_api(api_settings(settings, redis_url=redis.url), embedder) as api:
            queued = api.upload([make_txt(tmp_path / "src", "keys.txt", KEYS_ROTATION)])
            [job] = queued.json()["jobs"]
            assert api.wait_job(job["job_id"])["status"] == "succeeded"

            def chat(message: str) -> dict[str, Any]:
                body = {"message": message, "session_id": "ops"}
                with api.client.stream(
                    "POST", "/api/v1/chat", headers=api.auth("viewer"), json=body
                ) as r:
                    assert r.status_code == 200
                    events = read_sse(r)
                assert events[-1][0] == "done", events
                done: dict[str, Any] = json.loads(events[-1][1])
                return done

            assert chat("How often are the signing keys rotated?")["history_messages"] == 0
            assert chat("And who rotates them?")["history_messages"] == 2
            redis.stop()
            down = chat("How often are the signing keys rotated?")
            assert down["history_messages"] == 0
            assert down["citations"], "answered from the documents"
    finally:
        redis.stop()


def test_chat_streams_an_llm_answer_through_an_openai_compatible_endpoint(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    llm = FakeOpenAI()
    try:
        configured = api_settings(
            settings, llm_url=llm.url, llm_model="fake-chat", llm_api_key=SecretStr(API_KEY)
        )
        with running_api(configured, embedder) as api:
            src = tmp_path / "src"
            job = api.upload([make_txt(src, "keys.txt", KEYS_ROTATION)]).json()["jobs"][0]
            assert api.wait_job(job["job_id"])["status"] == "succeeded"
            body = {"message": "How often are keys rotated?", "session_id": "llm-1"}
            with api.client.stream(
                "POST", "/api/v1/chat", headers=api.auth("viewer"), json=body
            ) as r:
                events = read_sse(r)
        tokens = "".join(json.loads(d)["text"] for n, d in events if n == "token")
        done = json.loads(events[-1][1])
        assert events[-1][0] == "done"
        assert tokens.strip().startswith("From 1 passages: the answer is forty two")
        assert done["answer"] == tokens
        assert done["citations"][0]["document_id"] == job["document_id"]
        sent = [r for r in llm.state.requests if r.path == "/v1/chat/completions"]
        assert len(sent) == 1
        assert sent[0].body["model"] == "fake-chat"
        assert sent[0].body["stream"] is True
        assert sent[0].headers["authorization"] == f"Bearer {API_KEY}"
        assert sent[0].body["messages"][-1]["content"] == "How often are keys rotated?"
    finally:
        llm.stop()


# --- authentication, roles, audit --------------------------------------------------------


def test_authentication_roles_and_audit_log(api: Api, tmp_path: Path) -> None:
    client = api.client
    missing = assert_problem(client.get("/api/v1/documents"), 401, "missing-credentials")
    assert missing["detail"]
    assert client.get("/api/v1/documents").headers["www-authenticate"] == "Bearer"
    wrong = client.get("/api/v1/documents", headers={"Authorization": "Bearer ingk_nope"})
    assert_problem(wrong, 401, "invalid-credentials")
    wrong_header = client.get("/api/v1/documents", headers={"X-API-Key": "ingk_nope"})
    assert_problem(wrong_header, 401, "invalid-credentials")
    by_header = client.get("/api/v1/documents", headers={"X-API-Key": api.keys["viewer"]})
    assert by_header.status_code == 200, by_header.text

    # Roles: viewer reads; editor writes; only admin reads the audit log.
    doc = make_txt(tmp_path / "src", "notes.txt", ONBOARDING)
    assert_problem(api.upload([doc], role="viewer"), 403, "forbidden")
    assert_problem(api.get("/api/v1/audit", "editor"), 403, "forbidden")
    assert_problem(api.get("/api/v1/audit", "viewer"), 403, "forbidden")
    uploaded = api.upload([doc], role="editor")
    assert uploaded.status_code == 202
    document_id = uploaded.json()["jobs"][0]["document_id"]
    api.wait_job(uploaded.json()["jobs"][0]["job_id"])
    assert api.delete(f"/api/v1/documents/{document_id}", "editor").status_code == 204
    assert client.post("/api/v1/search", json={"query": "x"}).status_code == 401

    response = api.get("/api/v1/audit", "admin")
    assert response.status_code == 200, response.text
    entries = response.json()["entries"]
    for entry in entries:
        assert {"ts", "actor", "source_ip", "action", "target", "outcome"} <= set(entry)
    by_action: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_action.setdefault(entry["action"], []).append(entry)
    uploads = by_action["POST /api/v1/documents"]
    success = [e for e in uploads if e["outcome"] == "success"]
    assert len(success) == 1
    assert success[0]["actor"].startswith("editor (")
    assert success[0]["source_ip"] == "testclient"
    assert success[0]["target"] == document_id
    assert success[0]["status_code"] == 202
    denied = [e for e in uploads if e["outcome"] == "denied"]
    assert len(denied) == 1
    assert denied[0]["actor"].startswith("viewer (")
    assert denied[0]["status_code"] == 403
    deletion = by_action["DELETE /api/v1/documents/{document_id}"]
    assert [(e["outcome"], e["target"]) for e in deletion] == [("success", document_id)]
    anonymous = by_action["POST /api/v1/search"]
    assert [(e["actor"], e["outcome"], e["status_code"]) for e in anonymous] == [
        (None, "denied", 401)
    ]
    # Reads are not audited, unless their key was refused.
    reads = [e for a, entries in by_action.items() if a.startswith("GET ") for e in entries]
    assert {(e["action"], e["actor"], e["status_code"]) for e in reads} == {
        ("GET /api/v1/documents", "unknown key ingk_nope", 401)
    }
    page = api.get("/api/v1/audit", params={"limit": 1, "offset": 1}).json()
    assert page["entries"] == entries[1:2]
    huge_offset = api.get("/api/v1/audit", params={"offset": 2**63})
    assert_problem(huge_offset, 422, "validation-error")


# --- rate limits and backpressure ----------------------------------------------------------


def test_rate_limit_per_key(settings: Settings, embedder: CountingEmbedder) -> None:
    with running_api(api_settings(settings, rate_limit="5/minute"), embedder) as api:
        for _ in range(5):
            assert api.get("/api/v1/documents", "viewer").status_code == 200
        limited = api.get("/api/v1/documents", "viewer")
        body = assert_problem(limited, 429, "rate-limited")
        assert int(limited.headers["retry-after"]) >= 1
        assert "rate limit" in body["detail"]
        # The limit is per key: another key still gets through, public routes too.
        assert api.get("/api/v1/documents", "editor").status_code == 200
        assert api.client.get("/health/live").status_code == 200


def test_backpressure_when_the_queue_is_full(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    with running_api(api_settings(settings, max_queued=1), embedder) as api:
        api.ctx.ledger.submit(NewJob(kind="noop", payload={}, not_before=time.time() + 3600))
        doc = make_txt(tmp_path / "src", "a.txt", ONBOARDING)
        full = api.upload([doc])
        assert_problem(full, 503, "queue-full")
        assert full.headers["retry-after"] == "30"
        make_txt(api.ctx.settings.incoming_dir, "b.txt", BACKUPS)
        by_path = api.post("/api/v1/jobs/ingest", json={"document_paths": ["b.txt"]})
        assert_problem(by_path, 503, "queue-full")
        assert api.get("/api/v1/documents").json()["total"] == 0


# --- input validation ----------------------------------------------------------------------


def test_upload_size_and_type_checks(settings: Settings, embedder: CountingEmbedder) -> None:
    with running_api(api_settings(settings, max_upload_bytes=1000), embedder) as api:

        def upload(name: str, content: bytes) -> Response:
            files = {"files": (name, content, "application/octet-stream")}
            return api.post("/api/v1/documents", "editor", files=files)

        too_big = assert_problem(upload("big.txt", b"word " * 1000), 413, "payload-too-large")
        assert "1,000" in too_big["detail"]
        png = assert_problem(upload("image.bmp", b"BM" + bytes(64)), 415, "unsupported-media-type")
        assert ".bmp" in png["detail"]
        assert_problem(upload("report.pdf", b"just some text, not a PDF"), 415, "content-mismatch")
        assert_problem(upload("sheet.xlsx", b"plain text"), 415, "content-mismatch")
        assert_problem(upload("notes.txt", b"abc\x00\x01\x02" * 10), 415, "content-mismatch")
        assert_problem(upload("noext", b"hello"), 415, "unsupported-media-type")
        bad_meta = api.post(
            "/api/v1/documents",
            files={"files": ("a.txt", b"hello", "text/plain")},
            data={"metadata": "{not json"},
        )
        assert bad_meta.status_code == 422
        assert bad_meta.json()["errors"][0]["field"] == "metadata"
        not_object = api.post(
            "/api/v1/documents",
            files={"files": ("a.txt", b"hello", "text/plain")},
            data={"metadata": "[1, 2]"},
        )
        assert_problem(not_object, 422, "validation-error")
        no_files = api.post("/api/v1/documents", data={"collection": "x"})
        body = assert_problem(no_files, 422, "validation-error")
        assert "files" in [e["field"] for e in body["errors"]]
        # Nothing was staged or queued by any of the refused uploads.
        assert api.get("/api/v1/documents").json()["total"] == 0
        assert api.get("/api/v1/jobs", params={"kind": "ingest"}).json()["jobs"] == []

        # JSON bodies are bounded by the middleware before anything parses them.
        huge = api.client.post(
            "/api/v1/search",
            content=b'{"query": "' + b"a" * (1024 * 1024 + 10) + b'"}',
            headers={**api.auth(), "Content-Type": "application/json"},
        )
        assert_problem(huge, 413, "payload-too-large")


def test_json_body_validation(api: Api) -> None:
    def search(content: bytes | None = None, **body: Any) -> Response:
        if content is not None:
            headers = {**api.auth("viewer"), "Content-Type": "application/json"}
            return api.client.post("/api/v1/search", content=content, headers=headers)
        return api.post("/api/v1/search", "viewer", json=body)

    malformed = assert_problem(search(content=b'{"query": "x",'), 422, "validation-error")
    assert [(e["location"], e["field"]) for e in malformed["errors"]] == [("body", "")]
    assert malformed["detail"] == "invalid fields: body"
    assert "JSON" in malformed["errors"][0]["message"]
    assert_problem(search(content=b"[1, 2]"), 422, "validation-error")

    missing = assert_problem(search(k=3), 422, "validation-error")
    assert [e["field"] for e in missing["errors"]] == ["query"]
    assert missing["errors"][0]["location"] == "body"
    assert "query" in missing["detail"]

    zero = assert_problem(search(query="keys", k=0), 422, "validation-error")
    assert [e["field"] for e in zero["errors"]] == ["k"]
    assert "k" in zero["detail"]
    assert_problem(search(query="keys", k=101), 422, "validation-error")
    assert_problem(search(query=""), 422, "validation-error")
    bad_mode = assert_problem(search(query="keys", mode="fuzzy"), 422, "validation-error")
    assert [e["field"] for e in bad_mode["errors"]] == ["mode"]
    nested = assert_problem(search(query="x", filters={"a": [1]}), 422, "validation-error")
    assert all(e["field"].startswith("filters.a") for e in nested["errors"]), nested

    traversal = api.post("/api/v1/jobs/ingest", json={"document_paths": []})
    assert [e["field"] for e in assert_problem(traversal, 422, "validation-error")["errors"]] == [
        "document_paths"
    ]
    limit = assert_problem(
        api.get("/api/v1/documents", params={"limit": 0}), 422, "validation-error"
    )
    assert [(e["location"], e["field"]) for e in limit["errors"]] == [("query", "limit")]
    assert_problem(api.get("/api/v1/nowhere"), 404, "not-found")
    assert_problem(api.client.put("/api/v1/search", headers=api.auth()), 405, "method-not-allowed")


# --- operations: health, metrics, request ids, docs ------------------------------------------


def test_health_checks_inline(api: Api) -> None:
    live = api.client.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = api.client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ok"
    checks = body["checks"]
    assert set(checks) == {"database", "redis", "incoming_dir", "staging", "embedder", "workers"}
    assert checks["database"] == {"status": "ok", "detail": api.ctx.store.dialect}
    assert checks["redis"] == {"status": "disabled"}
    assert checks["incoming_dir"]["status"] == "ok"
    assert checks["embedder"] == {"status": "ok", "detail": api.ctx.embedder.model_id}
    assert checks["workers"]["status"] == "ok"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_health_ready_fails_in_queue_mode_without_redis(
    settings: Settings, embedder: CountingEmbedder
) -> None:
    queue = api_settings(settings, mode="queue", redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    with running_api(queue, embedder) as api:
        assert api.client.get("/health/live").status_code == 200
        ready = api.client.get("/health/ready")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["status"] == "error"
        checks = body["checks"]
        assert checks["redis"]["status"] == "error"
        assert "onnect" in checks["redis"]["detail"]
        assert checks["workers"]["status"] == "error"
        assert "no live worker" in checks["workers"]["detail"]
        assert checks["database"]["status"] == "ok"
        assert checks["embedder"]["status"] == "ok"


def test_metrics_are_public_prometheus_text(api: Api, tmp_path: Path) -> None:
    queued = api.upload([make_txt(tmp_path / "src", "a.txt", ONBOARDING)]).json()["jobs"]
    api.wait_job(queued[0]["job_id"])
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "ingest_jobs",
        "ingest_documents",
        "ingest_chunks",
        "ingest_http_request_duration_seconds",
        "ingest_live_workers",
        "ingest_dead_letter_jobs",
    ):
        assert f"# TYPE {name} " in text, name
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['ingest_jobs{queue="ingest",status="succeeded"}'] == 1
    assert samples['ingest_documents{status="ready"}'] == 1
    assert samples["ingest_chunks"] >= 1
    assert samples["ingest_dead_letter_jobs"] == 0
    assert samples["ingest_live_workers"] >= 1
    upload_count = (
        "ingest_http_request_duration_seconds_count"
        '{method="POST",route="/api/v1/documents",status="202"}'
    )
    assert samples[upload_count] == 1


def test_request_ids_openapi_and_docs(api: Api) -> None:
    client = api.client
    echoed = client.get("/health/live", headers={"X-Request-ID": "abc-123.x_y"})
    assert echoed.headers["x-request-id"] == "abc-123.x_y"
    generated = client.get("/health/live")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    unsafe = client.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])
    too_long = client.get("/health/live", headers={"X-Request-ID": "a" * 65})
    assert too_long.headers["x-request-id"] != "a" * 65
    # Errors carry one too, including those the middleware itself answers.
    for response in (
        client.get("/api/v1/documents"),
        client.get("/api/v1/nowhere"),
        api.get("/api/v1/documents/nope"),
        api.post("/api/v1/search", json={}),
        client.post(
            "/api/v1/search",
            content=b"x" * (1024 * 1024 + 1),
            headers={"X-Request-ID": "big-one"},
        ),
    ):
        assert response.headers.get("x-request-id"), response.request.url
    ids = {client.get("/health/live").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3

    openapi = client.get("/api/v1/openapi.json")
    assert openapi.status_code == 200
    spec = openapi.json()
    assert spec["info"]["title"] == "ingest"
    for path in (
        "/api/v1/documents",
        "/api/v1/documents/{document_id}",
        "/api/v1/documents/{document_id}/chunks",
        "/api/v1/jobs/ingest",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/events",
        "/api/v1/jobs/{job_id}/retry",
        "/api/v1/search",
        "/api/v1/chat",
        "/api/v1/audit",
    ):
        assert path in spec["paths"], path
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    assert "/api/v1/openapi.json" in docs.text
