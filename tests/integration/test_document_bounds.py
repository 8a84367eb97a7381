"""Bounds on what one document may cost: pages, chunks, and chunking that a cancel
stops. Real SQLite, the real tokenizer and model, real worker threads; generated
inputs, with the limits scaled down by settings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.cli.follow import add_paths
from ingest.context import Context
from ingest.ingestion import actions
from ingest.settings import Settings
from ingest.store import Job, document_id_for
from tests.conftest import CountingEmbedder
from tests.fixtures_docs import make_pdf, make_pptx, make_txt, prose
from tests.support.processes import wait_until


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'ingest.db'}",
        incoming_dir=tmp_path / "incoming",
        isolate_parsing=False,
    )


def context(settings: Settings, embedder: CountingEmbedder, **changes: object) -> Context:
    return Context(settings.model_copy(update=changes), embedder=embedder)


def reasons_by_file(errors: list[dict[str, str]]) -> dict[str, str]:
    return {Path(e["source"]).name: e["reason"] for e in errors}


def assert_failed_at_once(ctx: Context, path: Path, setting: str) -> None:
    """One attempt, failed as bad input (no retry), the document failed with the reason."""
    document_id = document_id_for("default", str(path.resolve()))
    [job] = ctx.ledger.list_jobs(document_id=document_id)
    assert (job.status, job.attempt, job.error_type) == ("failed", 1, "rejected")
    assert setting in (job.error_message or "")
    document = ctx.store.get_document(document_id)
    assert document is not None
    assert document.status == "failed"
    assert setting in (document.error or "")
    assert document.chunk_count == 0


def test_a_document_over_the_page_limit_fails_naming_the_setting(
    sqlite_settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    make_pdf(docs, "short.pdf", [prose(30, page) for page in range(3)])
    long_pdf = make_pdf(docs, "long.pdf", [prose(30, page) for page in range(4)])
    deck = make_pptx(docs, "deck.pptx", [(f"Slide {n}", prose(20, n)) for n in range(4)])
    # Parsing in its child process, as deployed: the limit must reach it.
    ctx = context(sqlite_settings, embedder, max_pages=3, isolate_parsing=True, concurrency=1)
    try:
        report = add_paths(ctx, [docs], collection="default")

        reasons = reasons_by_file(report.errors)
        assert (report.added, report.failed) == (1, 2), reasons
        assert "4 pages" in reasons["long.pdf"]
        assert "4 slides" in reasons["deck.pptx"]
        assert_failed_at_once(ctx, long_pdf, "INGEST_MAX_PAGES")
        assert_failed_at_once(ctx, deck, "INGEST_MAX_PAGES")
    finally:
        ctx.close()


def test_a_document_over_the_chunk_limit_fails_naming_the_setting(
    sqlite_settings: Settings, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    make_txt(docs, "short.txt", prose(150, 1))
    long_text = make_txt(docs, "long.txt", prose(3_000, 2))  # ~16 chunks
    ctx = context(sqlite_settings, embedder, max_chunks_per_document=5)
    try:
        report = add_paths(ctx, [docs], collection="default")

        reasons = reasons_by_file(report.errors)
        assert (report.added, report.failed) == (1, 1), reasons
        assert "more than 5 chunks" in reasons["long.txt"]
        assert_failed_at_once(ctx, long_text, "INGEST_MAX_CHUNKS_PER_DOCUMENT")
        assert embedder.texts_embedded == report.embedded, "nothing of long.txt was embedded"
    finally:
        ctx.close()


@pytest.fixture
def worker_ctx(sqlite_settings: Settings, embedder: CountingEmbedder) -> Iterator[Context]:
    """A context with a worker thread taking ingest jobs, as `ingest serve` runs one."""
    ctx = context(sqlite_settings, embedder)
    worker = ctx.worker(queues=["ingest"], concurrency=1)
    thread = threading.Thread(target=worker.run, name="test-worker", daemon=True)
    thread.start()
    try:
        yield ctx
    finally:
        worker.stop()
        thread.join()
        ctx.close()


def test_cancelling_a_job_while_it_chunks_a_long_line_stops_it_there(
    worker_ctx: Context, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    # ~5.6 MB on one line with no sentence ends: the splitter's hardest input, long
    # enough that chunking it outlasts the cancel's way to the job (a progress row
    # after 0.2 s, a cancel check every 0.25 s) many times over on a fast CPU: at
    # 700 KB one machine of ours chunked it all before the cancel arrived. The job
    # stops at the cancel, so the test does not wait for the rest.
    line = prose(800_000, 6).replace("\n\n", " ").replace(".", "")
    path = make_txt(tmp_path / "docs", "line.txt", line)
    job = worker_ctx.submitter.submit_path(path, collection="default", stage=False)

    def chunking() -> Job | None:
        now = worker_ctx.ledger.get(job.id)
        assert now is not None
        assert not now.is_terminal, (now.status, now.error_message)
        started = now.stage == "chunk" and 0 < now.progress_current < now.progress_total
        return now if started else None

    wait_until(chunking, 120, message="the job to be chunking")
    actions.cancel_job(worker_ctx.store, job.id)

    def finished() -> Job | None:
        now = worker_ctx.ledger.get(job.id)
        return now if now is not None and now.is_terminal else None

    done = wait_until(finished, 120, message="the cancelled job to end")
    assert (done.status, done.error_type) == ("cancelled", "cancelled")
    # It stopped where it was, part-way through chunking: nothing was embedded.
    assert done.stage == "chunk"
    assert done.progress_current < done.progress_total
    assert embedder.texts_embedded == 0
    assert worker_ctx.store.chunks_of(job.document_id or "") == []
