"""Property-based fuzzing of the HTTP API from its own OpenAPI document: whatever
a client sends to any operation, the answer is never a 5xx.

Schemathesis generates the requests and drives the app in-process (its ASGI client
runs the app's lifespan, so the inline worker and scheduler threads are live);
path parameters are sometimes swapped for ids of real documents and jobs so the
fuzzer reaches past the 404s."""

from __future__ import annotations

import os
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
from schemathesis.python.asgi import shutdown_lifespans

from ingest.api.app import create_app
from ingest.context import Context
from ingest.pipeline.embedders import LocalEmbedder
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
    tmp_path_factory: pytest.TempPathFactory, real_embedder: LocalEmbedder
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
    ctx = Context(settings, embedder=real_embedder)
    try:
        admin_key, _ = Access(ctx.store.engine).create_key("admin", name="fuzzer")
        # Real rows for the fuzzer to hit: a ready document, a failed one, and jobs
        # in each state a route treats differently. The worker starts with the app.
        docs = root / "docs"
        good = ctx.submitter.submit_path(
            make_txt(docs, "policy.txt", "Signing keys are rotated every ninety days. " * 20),
            collection="default",
            stage=True,
        )
        bad = ctx.submitter.submit_path(
            make_corrupt_pdf(docs, "broken.pdf"), collection="default", stage=True
        )
        make_txt(settings.incoming_dir / "shared", "notes.txt", "Backups run nightly.")
        later = ctx.ledger.submit(NewJob(kind="noop", payload={}))
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
    entries = Access(fuzz_target.ctx.store.engine).audit_entries(limit=1000)
    actions = {e["action"] for e in entries if (e["actor"] or "").startswith("fuzzer")}
    if not actions:
        pytest.skip("runs after the fuzz tests of this module")
    for action in (
        "POST /api/v1/documents",
        "DELETE /api/v1/documents/{document_id}",
        "POST /api/v1/jobs/ingest",
        "POST /api/v1/jobs/{job_id}/retry",
        "POST /api/v1/search",
        "POST /api/v1/chat",
    ):
        assert action in actions, sorted(actions)
