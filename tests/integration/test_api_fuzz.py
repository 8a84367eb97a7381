"""Property-based fuzzing of the HTTP API from its own OpenAPI document, on both
backends: whatever a client sends to any operation, the answer is never a 5xx and
conforms to the document (status, content type, headers, body schema), valid
requests are accepted and invalid ones refused (every schemathesis check).

Schemathesis generates the requests and drives the app in-process (its ASGI client
runs the app's lifespan, so the inline worker and scheduler threads are live);
path parameters are sometimes swapped for ids of real documents and jobs so the
fuzzer reaches past the 404s. Generation is derandomized: a run is repeatable."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from schemathesis.python.asgi import shutdown_lifespans

from ingest.api.app import create_app
from ingest.context import Context
from ingest.embedding.onnx_embedder import OnnxEmbedder
from ingest.settings import Settings
from ingest.store import NewJob, Store
from ingest.store.access import Access
from tests.fixtures_docs import make_corrupt_pdf, make_txt
from tests.support.postgres import PostgresServer

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
PROBLEM = "urn:ingest:problem:"


@dataclass
class FuzzTarget:
    app: FastAPI
    ctx: Context
    admin_key: str
    ids: dict[str, list[str]]


def _database_url(backend: str, root: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{root / 'ingest.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    store = Store.open(url)
    try:
        store.migrate()
    finally:
        store.close()
    return url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_target(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    real_embedder: OnnxEmbedder,
) -> Iterator[FuzzTarget]:
    root = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    settings = Settings(
        database_url=_database_url(request.param, root, request),
        incoming_dir=root / "incoming",
        isolate_parsing=False,
        # The fuzzer sends hundreds of requests with one key from one address.
        rate_limit="1000000/minute",
        auth_failure_rate_limit="1000000/minute",
        max_upload_bytes=256 * 1024,
        max_files_per_upload=20,
        # A fuzzed events stream of a live job must not idle into a ping-less wait.
        sse_ping_seconds=1,
        # Schemathesis ends the app's lifespan after each test; quick ticks stop it quickly.
        poll_seconds=0.2,
        scheduler_tick_seconds=0.2,
    )
    real_embedder.embed(["warm up"])  # the first call loads the model: not in a job's time
    ctx = Context(settings, embedder=real_embedder)
    try:
        admin_key, _ = Access(ctx.store.engine).create_key("admin", name="fuzzer")
        # Real rows for the fuzzer to hit: a ready document and a failed one, and jobs
        # that succeed, fail or were cancelled. The worker starts with the app.
        docs = root / "docs"
        good = ctx.submitter.submit_path(
            make_txt(docs, "policy.txt", "Signing keys are rotated every ninety days. " * 20),
            collection="default",
            metadata={"team": "security", "year": 2024, "tags": ["a", {"b": None}]},
            stage=True,
        )
        bad = ctx.submitter.submit_path(
            make_corrupt_pdf(docs, "broken.pdf"), collection="default", stage=True
        )
        later = ctx.ledger.submit(NewJob(kind="noop", payload={}, not_before=time.time() + 3600))
        ctx.ledger.cancel(later.id)
        ids = {
            "document_id": [d for d in (good.document_id, bad.document_id) if d],
            "job_id": [good.id, bad.id, later.id],
        }
        target = FuzzTarget(create_app(settings, context=ctx), ctx, admin_key, ids)
        yield target
    finally:
        # Stops the worker and scheduler threads the ASGI client's lifespan started.
        shutdown_lifespans()
        ctx.close()


# OpenAPI cannot say which file names we parse: a generated file part is named after
# its field ("files", no extension), which is refused with a documented 415.
_CONFIG = {
    "operations": [
        {
            "include-name": "POST /api/v1/documents",
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "401", "403", "409", "415", "429"]
                }
            },
        },
        {
            # A schema-valid path may be absolute or lead outside INGEST_INCOMING_DIR:
            # 400 `path-outside-incoming-dir` (documented), which no schema can express.
            "include-name": "POST /api/v1/jobs/ingest",
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "429"]
                }
            },
        },
        {
            # A folder outside INGEST_SOURCE_ROOTS is a documented 400, and a period
            # under 10 s a 422: no schema can express either.
            "include-name": "POST /api/v1/sources",
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "400", "401", "403", "409", "422", "429"]
                }
            },
        },
    ]
}


@pytest.fixture(scope="module")
def api_schema(fuzz_target: FuzzTarget) -> Any:
    config = SchemathesisConfig.from_dict(_CONFIG)
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzz_target.app, config=config)


def _operations() -> list[tuple[str, str]]:
    # Building the app touches nothing (no database, no model) until its lifespan runs.
    spec = create_app(Settings()).openapi()
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item]


OPERATIONS = _operations()


def _strategy(operation: Any, ids: dict[str, list[str]]) -> Any:
    """Valid and invalid requests; for a path with an id, also ones naming real rows."""
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(generation_mode=mode) for mode in modes]
    names = [p.name for p in operation.path_parameters]
    for name in names:
        for value in ids.get(name, []):
            strategies.append(operation.as_strategy(path_parameters={name: value}))
    return st.one_of(strategies)


def _fuzz_settings(examples: int) -> Any:
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
    )


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    live = sorted((op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations())
    assert live == sorted(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_conforms_to_its_schema(
    method: str, path: str, api_schema: Any, fuzz_target: FuzzTarget
) -> None:
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {fuzz_target.admin_key}"}

    @_fuzz_settings(MAX_EXAMPLES)
    @hypothesis.given(case=_strategy(operation, fuzz_target.ids))
    def fuzz(case: schemathesis.Case) -> None:
        # An empty list in the query is not sent at all: a "negative" case made of one
        # is a valid request, and schemathesis would count its 200 as a defect.
        hypothesis.assume(not any(value == [] for value in (case.query or {}).values()))
        # Every check schemathesis has; a bound on the read: an events stream that
        # never ended fails here, not hangs.
        case.call_and_validate(headers=headers, timeout=20)

    fuzz()


def test_the_fuzzer_got_past_authentication(fuzz_target: FuzzTarget) -> None:
    """The audit log shows the fuzzer's mutating calls, made as the admin key."""
    entries = Access(fuzz_target.ctx.store.engine).audit_entries(limit=1_000_000)
    actions = {e["action"] for e in entries if (e["actor"] or "").startswith("fuzzer")}
    if not actions:
        pytest.skip("runs after the fuzz tests of this module")
    for action in (
        "POST /api/v1/documents",
        "DELETE /api/v1/documents/{document_id}",
        "POST /api/v1/jobs/ingest",
        "POST /api/v1/jobs/{job_id}/retry",
        "DELETE /api/v1/jobs/{job_id}",
    ):
        assert action in actions, sorted(actions)
    # Searches and chats only read: the admin key's are not audit entries.
    assert "POST /api/v1/search" not in actions
    assert "POST /api/v1/chat" not in actions


# --- hostile values, by hand, on every parameter ------------------------------------

NUL = "\x00"
LONG_COMPONENT = "a" * 300  # over the 255 bytes a file name may have
DEEP_JSON = "[" * 100_000 + "]" * 100_000
# Raw JSON bodies: the json module would refuse to write NaN as JSON for us.
NON_FINITE = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999")


def _hostile_requests(ids: dict[str, list[str]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, url, request kwargs) for hostile values of every string, number and
    JSON parameter of every operation."""
    doc, job = ids["document_id"][0], ids["job_id"][0]
    strings = (NUL, f"a{NUL}b", LONG_COMPONENT, "x" * 5000, "%00", "../" * 50, "\\" * 10)
    numbers = ("-1", "1e999", "NaN", "Infinity", str(2**63), str(-(2**63) - 1), "0.5", "")
    for value in strings:
        for name in ("collection", "source_prefix", "status"):
            yield "GET", "/api/v1/documents", {"params": {name: value}}
        for name in ("status", "kind", "queue", "document_id"):
            yield "GET", "/api/v1/jobs", {"params": {name: value}}
        for path in (
            "/api/v1/documents/{}",
            "/api/v1/documents/{}/chunks",
            "/api/v1/jobs/{}",
            "/api/v1/jobs/{}/events",
        ):
            yield "GET", path.format(value.replace("/", "_")), {}
        yield "DELETE", f"/api/v1/documents/{value.replace('/', '_')}", {}
        yield "DELETE", f"/api/v1/jobs/{value.replace('/', '_')}", {}
        yield "POST", f"/api/v1/jobs/{value.replace('/', '_')}/retry", {}
        for body in (
            {"query": value},
            {"query": "keys", "collection": value},
            {"query": "keys", "filters": {value: 1}},
            {"query": "keys", "filters": {"team": value}},
            {"query": "keys", "mode": value},
        ):
            yield "POST", "/api/v1/search", {"json": body}
        for body in (
            {"message": value},
            {"message": "hi", "session_id": value},
            {"message": "hi", "collection": value},
        ):
            yield "POST", "/api/v1/chat", {"json": body}
        for body in (
            {"document_paths": [value]},
            {"document_paths": [f"{value}/{value}.txt"]},
            {"document_paths": ["x.txt"], "collection": value},
            {"document_paths": ["x.txt"], "metadata": {value: value}},
        ):
            yield "POST", "/api/v1/jobs/ingest", {"json": body}
        for data in (
            {"collection": value},
            {"metadata": json.dumps({"k": value})},
            {"metadata": json.dumps({value: 1})},
            {"metadata": json.dumps({"a": {"b": [value]}})},
            {"metadata": value},
        ):
            files = [("files", ("a.txt", b"some text", "text/plain"))]
            yield "POST", "/api/v1/documents", {"data": data, "files": files}
        files = [("files", (f"{value}.txt", b"some text", "text/plain"))]
        yield "POST", "/api/v1/documents", {"files": files}
    for value in numbers:
        for url in ("/api/v1/documents", "/api/v1/jobs", "/api/v1/audit"):
            for name in ("limit", "offset"):
                yield "GET", url, {"params": {name: value}}
        yield "GET", f"/api/v1/documents/{doc}/chunks", {"params": {"offset": value}}
    for literal in NON_FINITE:
        for raw in (
            f'{{"query": "keys", "k": {literal}}}',
            f'{{"query": "keys", "filters": {{"year": {literal}}}}}',
            f'{{"document_paths": ["x.txt"], "metadata": {{"n": {literal}}}}}',
            f'{{"message": "hi", "k": {literal}}}',
        ):
            url = "/api/v1/jobs/ingest" if "document_paths" in raw else "/api/v1/search"
            url = "/api/v1/chat" if "message" in raw else url
            headers = {"Content-Type": "application/json"}
            yield "POST", url, {"data": raw.encode(), "headers": headers}
        files = [("files", ("n.txt", b"some text", "text/plain"))]
        for meta in (f'{{"n": {literal}}}', f'{{"a": [1, {{"b": {literal}}}]}}'):
            yield "POST", "/api/v1/documents", {"data": {"metadata": meta}, "files": files}
    files = [("files", ("deep.txt", b"some text", "text/plain"))]
    for meta in (DEEP_JSON, "[" * 40 + "]" * 40, '{"a":' * 40 + "1" + "}" * 40):
        yield "POST", "/api/v1/documents", {"data": {"metadata": meta}, "files": files}
    for raw in (DEEP_JSON, '{"query": ' + "[" * 5000 + "]" * 5000 + "}"):
        headers = {"Content-Type": "application/json"}
        yield "POST", "/api/v1/search", {"data": raw.encode(), "headers": headers}
    yield "POST", "/api/v1/jobs/ingest", {"json": {"document_paths": ["a/" * 3000 + "b.txt"]}}
    # Filters whose type is not the stored value's (the fixture document has these keys).
    for filters in (
        {"team": 1},
        {"team": True},
        {"year": "x"},
        {"year": 10**30},
        {"tags": 1},
        {'a"b': 1},
        {"\\": "x"},
        {"$.team": "security"},
    ):
        yield "POST", "/api/v1/search", {"json": {"query": "keys", "filters": filters}}
    # The longest headers we document, and longer.
    for key in ("k" * 200, "k" * 201, "é" * 10, "a b"):
        files = [("files", ("idem.txt", b"some text", "text/plain"))]
        yield "POST", "/api/v1/documents", {"files": files, "headers": {"Idempotency-Key": key}}
    yield "GET", f"/api/v1/jobs/{job}", {"headers": {"X-Request-ID": "r" * 10_000}}
    yield "GET", f"/api/v1/jobs/{job}", {"headers": {"Authorization": "Bearer " + "k" * 10_000}}
    yield "GET", f"/api/v1/jobs/{job}", {"headers": {"X-API-Key": "k" * 10_000}}


def test_hostile_values_never_get_a_server_error(fuzz_target: FuzzTarget) -> None:
    """NUL characters, over-long path components, non-finite numbers, 100k-deep JSON,
    over-long headers: every one is refused (or served) with a 4xx problem, never a
    5xx, and the service answers searches afterwards."""
    auth = {"Authorization": f"Bearer {fuzz_target.admin_key}"}
    failures = []
    with asgi.get_client(fuzz_target.app) as client:
        for method, url, kwargs in _hostile_requests(fuzz_target.ids):
            headers = {**auth, **kwargs.pop("headers", {})}
            # (A client of requests: stream, so an events stream is not read to its end.)
            with client.request(method, url, headers=headers, stream=True, **kwargs) as response:
                status = response.status_code
                text = response.text if status >= 400 else ""
            if status >= 500:
                failures.append((method, url[:100], str(kwargs)[:200], status, text[:300]))
            elif status >= 400:
                assert response.headers["content-type"].startswith("application/problem+json")
        assert not failures, failures
        filtered = {"query": "signing keys", "filters": {"team": "security"}}
        assert client.post("/api/v1/search", json=filtered, headers=auth).status_code == 200


# Generated multipart parts are all named after their field ("files"), so the
# schema-driven fuzzer never gets past the type check: here the uploads are real
# files of every supported type with random (sometimes plausible) contents.
_ZIP = b"PK\x03\x04"
_MAGIC = {
    ".pdf": b"%PDF-1.7\n",
    ".docx": _ZIP,
    ".pptx": _ZIP,
    ".xlsx": _ZIP,
    ".txt": b"\xef\xbb\xbf",
}
_NAMES = st.sampled_from(
    [".txt", ".md", ".csv", ".json", ".html", ".eml", ".pdf", ".docx", ".pptx", ".xlsx", ".png"]
)


@st.composite
def _uploads(draw: st.DrawFn) -> list[tuple[str, tuple[str, bytes, str]]]:
    files = []
    for n in range(draw(st.integers(min_value=1, max_value=3))):
        suffix = draw(_NAMES)
        prefix = _MAGIC.get(suffix, b"") if draw(st.booleans()) else b""
        content = prefix + draw(st.binary(max_size=2048))
        files.append(("files", (f"fuzz-{n}{suffix}", content, "application/octet-stream")))
    return files


def test_uploads_of_arbitrary_bytes_never_fail_the_server(fuzz_target: FuzzTarget) -> None:
    headers = {"Authorization": f"Bearer {fuzz_target.admin_key}"}
    metadata = st.one_of(
        st.none(),
        st.just("{}"),
        st.text(max_size=20),
        st.just('{"a": [1]}'),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3).map(json.dumps),
    )
    accepted: list[str] = []
    with asgi.get_client(fuzz_target.app) as client:

        @_fuzz_settings(MAX_EXAMPLES * 2)
        @hypothesis.given(files=_uploads(), meta=metadata)
        def upload(files: list[tuple[str, tuple[str, bytes, str]]], meta: str | None) -> None:
            data = {"collection": "fuzz"} | ({"metadata": meta} if meta is not None else {})
            response = client.post("/api/v1/documents", files=files, data=data, headers=headers)
            assert response.status_code in (202, 415, 422), response.text
            if response.status_code == 202:
                accepted.extend(j["job_id"] for j in response.json()["jobs"])

        upload()
        # Whatever the bytes were, each accepted job ends and the worker lives on.
        deadline = time.monotonic() + 60
        while True:
            jobs = fuzz_target.ctx.ledger.get_many(accepted)
            if all(j.is_terminal for j in jobs):
                break
            assert time.monotonic() < deadline, [j.status for j in jobs]
            time.sleep(0.05)  # the poll interval of a deadline-bounded poll
        assert {j.status for j in jobs} <= {"succeeded", "failed"}
        assert client.get("/health/ready").status_code == 200
        assert accepted
        # Whatever metadata was accepted, filtered searches still work for everyone.
        filtered = {"query": "anything", "filters": {"a": "b"}}
        assert client.post("/api/v1/search", json=filtered, headers=headers).status_code == 200
