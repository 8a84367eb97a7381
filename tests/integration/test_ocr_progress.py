"""A job OCRing a scan shows which page it is on while it runs (stage `ocr`,
"OCR page 2 of 3", current/total), keeps the stage in its history, and a cancel
during OCR stops the parse child there. Real SQLite, a real worker thread, parsing
in its isolated child process as deployed, real tesseract on a generated scan."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.context import Context
from ingest.ingestion import actions
from ingest.jobs.views import job_view
from ingest.store import Job
from tests.conftest import CountingEmbedder, sqlite_settings
from tests.fixtures_formats import make_many_page_scan
from tests.support.processes import wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract is not installed (scripts/setup)"
)

LINES = ["Quarterly walrus inventory", "stored in warehouse nine"]


@pytest.fixture
def worker_ctx(tmp_path: Path, embedder: CountingEmbedder) -> Iterator[Context]:
    """`ingest serve`'s worker: one job slot, parsing in an isolated child."""
    settings = sqlite_settings(tmp_path, isolate_parsing=True, concurrency=1)
    ctx = Context(settings, embedder=embedder)
    worker = ctx.worker(queues=["ingest"], concurrency=1)
    thread = threading.Thread(target=worker.run, name="test-worker", daemon=True)
    thread.start()
    try:
        yield ctx
    finally:
        worker.stop()
        thread.join()
        ctx.close()


def watch(ctx: Context, job_id: str, seen: list[dict[str, object]]) -> Job | None:
    """One look at the job as `ingest jobs show --json` prints it; the job once it ended."""
    job = ctx.ledger.get(job_id)
    assert job is not None
    view = job_view(job)
    state = {key: view[key] for key in ("stage", "current", "total", "message", "progress")}
    if not seen or seen[-1] != state:
        seen.append(state)
    return job if job.is_terminal else None


def test_a_job_shows_the_page_ocr_is_reading(worker_ctx: Context, tmp_path: Path) -> None:
    path = make_many_page_scan(tmp_path / "docs", "scan.pdf", 5, LINES)
    job = worker_ctx.submitter.submit_path(path, collection="default", stage=False)

    seen: list[dict[str, object]] = []
    done = wait_until(lambda: watch(worker_ctx, job.id, seen), 300, message="the job to end")

    assert done.status == "succeeded", done.error_message
    ocr = [state for state in seen if state["stage"] == "ocr"]
    assert ocr, seen  # seen while it ran: the stage lasts as long as its pages' OCR
    for state in ocr:
        assert state["total"] == 5
        assert re.fullmatch(r"OCR page [1-5] of 5|OCR done \(page 5 of 5\)", str(state["message"]))
    currents = [int(str(state["current"])) for state in ocr]
    assert currents == sorted(currents)
    progress = [float(str(state["progress"])) for state in seen]
    assert progress == sorted(progress), "the bar never runs backwards"
    # The job's stage history keeps OCR, every page of it, between parsing and chunking.
    stages = job_view(done)["stages"]
    names = [stage["stage"] for stage in stages]
    assert names.index("parse") < names.index("ocr") < names.index("chunk"), names
    assert {(s["current"], s["total"]) for s in stages if s["stage"] == "ocr"} == {(5, 5)}


def test_cancelling_a_job_during_ocr_stops_it_there(worker_ctx: Context, tmp_path: Path) -> None:
    # 100 pages, the most INGEST_OCR_MAX_PAGES lets through by default.
    path = make_many_page_scan(tmp_path / "docs", "archive.pdf", 100, LINES)
    job = worker_ctx.submitter.submit_path(path, collection="default", stage=False)

    def reading() -> Job | None:
        now = worker_ctx.ledger.get(job.id)
        assert now is not None
        assert not now.is_terminal, (now.status, now.error_message)
        return now if now.stage == "ocr" else None

    wait_until(reading, 120, message="the job to be reading pages by OCR")
    actions.cancel_job(worker_ctx.store, job.id)

    def finished() -> Job | None:
        now = worker_ctx.ledger.get(job.id)
        return now if now is not None and now.is_terminal else None

    ended = wait_until(finished, 60, message="the cancelled job to end")
    assert (ended.status, ended.error_type) == ("cancelled", "cancelled")
    assert ended.stage == "ocr"
    assert ended.progress_current < ended.progress_total == 100
    assert worker_ctx.store.chunks_of(job.document_id or "") == []
