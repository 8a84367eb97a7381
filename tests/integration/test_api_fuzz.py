"""Property-based fuzzing of the HTTP API from its own OpenAPI document: whatever
a client sends to any operation, the answer is never a 5xx.

Schemathesis generates the requests and drives the app in-process (its ASGI client
runs the app's lifespan, so the inline worker and scheduler threads are live);
path parameters are sometimes swapped for ids of real documents and jobs so the
fuzzer reaches past the 404s."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.python.asgi import shutdown_lifespans

from ingest.api.app import create_app
from ingest.context import Context
from ingest.embedding.onnx_embedder import OnnxEmbedder
from ingest.settings import Settings
from ingest.store.access import Access
from ingest.store.ledger import NewJob
from tests.fixtures_docs import make_corrupt_pdf, make_txt

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


@dataclass
class FuzzTarget:
    app: FastAPI
    ctx: Context
    admin_key: str
    ids: dict[str, list[str]]


@pytest.fixture(scope="module")
def fuzz_target(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: OnnxEmbedder
) -> Iterator[FuzzTarget]:
    root = tmp_path_factory.mktemp("fuzz")
    settings = Settings(
        database_url=f"sqlite:///{root / 'ingest.db'}",
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


@pytest.fixture(scope="module")
def api_schema(fuzz_target: FuzzTarget) -> Any:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzz_target.app)


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


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    live = sorted((op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations())
    assert live == sorted(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_operation_answers_with_a_server_error(
    method: str, path: str, api_schema: Any, fuzz_target: FuzzTarget
) -> None:
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {fuzz_target.admin_key}"}

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=_strategy(operation, fuzz_target.ids))
    def fuzz(case: schemathesis.Case) -> None:
        # A bound on the read: an events stream that never ended fails here, not hangs.
        case.call_and_validate(headers=headers, checks=[not_a_server_error], timeout=20)

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
    metadata = st.one_of(st.none(), st.just("{}"), st.text(max_size=20), st.just('{"a": [1]}'))
    accepted: list[str] = []
    with asgi.get_client(fuzz_target.app) as client:

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES * 2,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        @hypothesis.given(files=_uploads(), meta=metadata)
        def upload(files: list[tuple[str, tuple[str, bytes, str]]], meta: str | None) -> None:
            data = {"collection": "fuzz"} | ({"metadata": meta} if meta is not None else {})
            response = client.post("/api/v1/documents", files=files, data=data, headers=headers)
            assert response.status_code in (202, 415, 422), response.text
            if response.status_code == 202:
                accepted.extend(j["job_id"] for j in response.json()["jobs"])

        upload()
        # Whatever the bytes were, each accepted job ends and the worker lives on.
        deadline = time.monotonic() + 30
        while True:
            jobs = fuzz_target.ctx.ledger.get_many(accepted)
            if all(j.is_terminal for j in jobs):
                break
            assert time.monotonic() < deadline, [j.status for j in jobs]
            time.sleep(0.05)  # the poll interval of a deadline-bounded poll
        assert {j.status for j in jobs} <= {"succeeded", "failed"}
        assert client.get("/health/ready").status_code == 200
        assert accepted
