"""A document's status follows its latest job, on every path: success, failure, dead
letter by the reaper, cancel (queued and running), retry. On both backends, with the
real model and real worker threads; a worker that died is a claim nobody renews."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingest.context import Context
from ingest.ingestion import actions
from ingest.jobs.execution import JobExecution
from ingest.settings import Settings
from ingest.store import DocumentRecord, Job
from ingest.store.engine import write_transaction
from ingest.store.schema import jobs
from tests.conftest import CountingEmbedder
from tests.fixtures_docs import make_txt, prose
from tests.support.processes import wait_until

V1 = "The retention period for supplier invoices is seven years."
V2 = "The retention period for signed contracts is ten years."


@pytest.fixture
def one_attempt(settings: Settings, embedder: CountingEmbedder) -> Iterator[Context]:
    """Jobs get a single attempt: a worker that dies dead-letters its job."""
    ctx = Context(settings.model_copy(update={"max_attempts": 1}), embedder=embedder)
    yield ctx
    ctx.close()


def submit(ctx: Context, path: Path) -> Job:
    return ctx.submitter.submit_path(path, collection="default", stage=False)


def document(ctx: Context, job: Job) -> DocumentRecord:
    assert job.document_id is not None
    found = ctx.store.get_document(job.document_id)
    assert found is not None
    return found


def run_queued_jobs(ctx: Context) -> None:
    ctx.worker(queues=["ingest"], concurrency=1, burst=True).run()


def job_now(ctx: Context, job: Job) -> Job:
    found = ctx.ledger.get(job.id)
    assert found is not None
    return found


def die_while_running(ctx: Context, job: Job) -> Job:
    """A worker claims the job and dies: its lease runs out and the reaper takes it."""
    [claim] = ctx.ledger.claim_many("a-worker-that-died", ["ingest"], 30.0, 1)
    assert claim.job.id == job.id
    with write_transaction(ctx.store.engine) as conn:
        conn.execute(
            sa.update(jobs).where(jobs.c.id == job.id).values(lease_expires_at=time.time() - 1)
        )
    assert ctx.ledger.reap_expired() == [job.id]
    return job_now(ctx, job)


def keyword_hits(ctx: Context, query: str) -> list[str]:
    return [hit.text for hit in ctx.searcher.search(query, k=5, mode="keyword")]


# --- failures -------------------------------------------------------------------------


def test_a_dead_lettered_job_fails_its_document_with_the_reason(
    one_attempt: Context, tmp_path: Path
) -> None:
    job = submit(one_attempt, make_txt(tmp_path / "docs", "policy.txt", V1))
    assert document(one_attempt, job).status == "queued"

    dead = die_while_running(one_attempt, job)

    assert dead.status == "dead"
    doc = document(one_attempt, job)
    assert doc.status == "failed"
    assert doc.error == dead.error_message
    assert "stopped responding" in (doc.error or "")
    assert doc.chunk_count == 0


def test_a_newer_success_after_an_older_failure_makes_the_document_ready(
    one_attempt: Context, tmp_path: Path
) -> None:
    path = make_txt(tmp_path / "docs", "policy.txt", V1)
    older = submit(one_attempt, path)
    die_while_running(one_attempt, older)
    assert document(one_attempt, older).status == "failed"

    # The same bytes again: the failure said nothing about them, so they are ingested.
    newer = submit(one_attempt, path)
    assert document(one_attempt, newer).status == "queued"
    run_queued_jobs(one_attempt)

    assert job_now(one_attempt, newer).status == "succeeded"
    doc = document(one_attempt, newer)
    assert (doc.status, doc.error) == ("ready", None)
    assert keyword_hits(one_attempt, "invoices") == [V1]


def test_a_retried_dead_job_takes_its_document_back_through_queued_to_ready(
    one_attempt: Context, tmp_path: Path
) -> None:
    job = submit(one_attempt, make_txt(tmp_path / "docs", "policy.txt", V1))
    die_while_running(one_attempt, job)
    assert document(one_attempt, job).status == "failed"

    actions.retry_job(one_attempt.store, one_attempt.settings, one_attempt.doorbell, job.id)
    assert document(one_attempt, job).status == "queued"
    run_queued_jobs(one_attempt)

    assert job_now(one_attempt, job).status == "succeeded"
    assert (document(one_attempt, job).status, document(one_attempt, job).error) == ("ready", None)


def test_an_older_version_stays_searchable_after_a_newer_job_dies(
    one_attempt: Context, tmp_path: Path
) -> None:
    path = make_txt(tmp_path / "docs", "policy.txt", V1)
    first = submit(one_attempt, path)
    run_queued_jobs(one_attempt)
    assert document(one_attempt, first).status == "ready"
    path.write_text(V2)

    dead = die_while_running(one_attempt, submit(one_attempt, path))

    doc = document(one_attempt, dead)
    assert doc.status == "failed"
    assert "stopped responding" in (doc.error or "")
    assert doc.chunk_count == 1
    assert keyword_hits(one_attempt, "invoices") == [V1]
    assert keyword_hits(one_attempt, "contracts") == []


def test_an_older_job_dying_after_a_newer_one_succeeded_leaves_the_document_ready(
    one_attempt: Context, tmp_path: Path
) -> None:
    path = make_txt(tmp_path / "docs", "policy.txt", V1)
    older = submit(one_attempt, path)
    [claim] = one_attempt.ledger.claim_many("a-worker-that-died", ["ingest"], 30.0, 1)
    path.write_text(V2)
    newer = submit(one_attempt, path)
    worker = one_attempt.worker(queues=["ingest"], concurrency=1)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: job_now(one_attempt, newer).is_terminal, 120, message="the newer job")
    finally:
        worker.stop()
        thread.join()
    assert document(one_attempt, newer).status == "ready"

    assert die_after_claim(one_attempt, claim.job).status == "dead"

    doc = document(one_attempt, older)
    assert (doc.status, doc.error) == ("ready", None)
    assert keyword_hits(one_attempt, "contracts") == [V2]


def test_an_older_job_succeeding_while_a_newer_one_waits_leaves_the_document_queued(
    settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    """The older version is written, searchable, but the document is not `ready`
    yet: its latest job has still to run. And once it has, the document is ready
    with the newer version."""
    ctx = Context(settings, embedder=embedder)
    try:
        # Staged: each job reads the bytes it was submitted with.
        path = make_txt(tmp_path / "docs", "policy.txt", V1)
        older = ctx.submitter.submit_path(path, collection="default", stage=True)
        [claim] = ctx.ledger.claim_many("a-worker", ["ingest"], 30.0, 1)
        path.write_text(V2)
        newer = ctx.submitter.submit_path(path, collection="default", stage=True)

        ctx.handlers()["ingest"](JobExecution(claim, ctx.ledger, soft_timeout_s=60))

        assert job_now(ctx, older).status == "succeeded"
        assert job_now(ctx, newer).status == "queued"
        assert document(ctx, older).status == "queued"
        assert keyword_hits(ctx, "invoices") == [V1]

        run_queued_jobs(ctx)
        assert (document(ctx, newer).status, document(ctx, newer).error) == ("ready", None)
        assert keyword_hits(ctx, "contracts") == [V2]
    finally:
        ctx.close()


def die_after_claim(ctx: Context, job: Job) -> Job:
    with write_transaction(ctx.store.engine) as conn:
        conn.execute(
            sa.update(jobs).where(jobs.c.id == job.id).values(lease_expires_at=time.time() - 1)
        )
    assert ctx.ledger.reap_expired() == [job.id]
    return job_now(ctx, job)


# --- cancelling -----------------------------------------------------------------------


def test_cancelling_a_queued_job_returns_the_document_to_what_it_was(
    ctx: Context, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    # Never indexed: failed, saying so.
    fresh = submit(ctx, make_txt(docs, "fresh.txt", V2))
    actions.cancel_job(ctx.store, fresh.id)
    doc = document(ctx, fresh)
    assert doc.status == "failed"
    assert "cancelled" in (doc.error or "")

    # Indexed before: ready again, its earlier version searchable.
    path = make_txt(docs, "policy.txt", V1)
    first = submit(ctx, path)
    run_queued_jobs(ctx)
    path.write_text(V2.replace("contracts", "leases"))
    second = submit(ctx, path)
    assert document(ctx, second).status == "queued"

    actions.cancel_job(ctx.store, second.id)

    doc = document(ctx, first)
    assert (doc.status, doc.error) == ("ready", None)
    assert keyword_hits(ctx, "invoices") == [V1]


@pytest.fixture
def running_worker(ctx: Context) -> Iterator[Context]:
    worker = ctx.worker(queues=["ingest"], concurrency=1)
    thread = threading.Thread(target=worker.run, name="test-worker", daemon=True)
    thread.start()
    try:
        yield ctx
    finally:
        worker.stop()
        thread.join()


def cancel_while_embedding(ctx: Context, job: Job) -> Job:
    """Cancel once the job has embedded a batch, as DELETE /api/v1/jobs/{id} does."""

    def embedding() -> bool:
        now = job_now(ctx, job)
        assert not now.is_terminal, (now.status, now.error_message)
        return now.stage == "embed" and now.progress_current >= 8

    def finished() -> Job | None:
        now = job_now(ctx, job)
        return now if now.is_terminal else None

    wait_until(embedding, 120, message="the job to be embedding")
    actions.cancel_job(ctx.store, job.id)
    return wait_until(finished, 120, message="the cancelled job to end")


def test_cancelling_a_running_job_returns_the_document_to_what_it_was(
    running_worker: Context, tmp_path: Path
) -> None:
    ctx = running_worker
    docs = tmp_path / "docs"
    large = prose(60_000, 11)  # ~320 chunks: seconds of embedding, time to cancel in

    fresh = submit(ctx, make_txt(docs, "fresh.txt", large))
    assert cancel_while_embedding(ctx, fresh).status == "cancelled"
    doc = document(ctx, fresh)
    assert doc.status == "failed"
    assert "cancelled" in (doc.error or "")
    assert doc.chunk_count == 0

    path = make_txt(docs, "policy.txt", V1)
    first = submit(ctx, path)
    wait_until(lambda: job_now(ctx, first).is_terminal, 120, message="the first version")
    assert document(ctx, first).status == "ready"
    path.write_text(large)
    second = submit(ctx, path)
    assert cancel_while_embedding(ctx, second).status == "cancelled"

    doc = document(ctx, second)
    assert (doc.status, doc.error, doc.chunk_count) == ("ready", None, 1)
    assert keyword_hits(ctx, "invoices") == [V1]
