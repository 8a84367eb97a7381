"""Which rejections are remembered as known failures, and which are tried again."""

from __future__ import annotations

from pathlib import Path

from ingest.context import Context
from ingest.errors import ParseTimeout
from ingest.ingestion.ingestor import Ingestor
from ingest.pipeline.segments import Segment
from ingest.vocabulary import DocumentStatus
from tests.fixtures_docs import make_corrupt_pdf, make_txt


def _ingest(ingestor: Ingestor, ctx: Context, path: Path) -> str:
    prepared = ingestor.prepare(path, collection="default")
    with ctx.store.transaction() as tx:
        prepared.write(tx)
    return prepared.result.outcome


def test_a_corrupt_file_is_a_known_failure_until_it_changes(
    sqlite_ctx: Context, tmp_path: Path
) -> None:
    path = make_corrupt_pdf(tmp_path, "broken.pdf")
    assert _ingest(sqlite_ctx.ingestor, sqlite_ctx, path) == "failed"

    record = sqlite_ctx.ingestor.unchanged_record(path, collection="default")
    assert record is not None
    assert record.status == DocumentStatus.FAILED
    assert record.error is not None
    assert "PDF" in record.error

    path.write_bytes(path.read_bytes() + b"more garbage")
    assert sqlite_ctx.ingestor.unchanged_record(path, collection="default") is None


def test_a_parse_timeout_is_tried_again_next_time(sqlite_ctx: Context, tmp_path: Path) -> None:
    # A timeout depends on INGEST_PARSE_TIMEOUT_SECONDS, which the pipeline fingerprint
    # does not name: raising the limit must let the same bytes through.
    path = make_txt(tmp_path, "slow.txt", "Backups are copied to cold storage each night.")
    parse_calls: list[str] = []

    def times_out(data: bytes, filename: str, on_progress: object = None) -> list[Segment]:
        parse_calls.append(filename)
        raise ParseTimeout("parsing took longer than 1 s and was stopped")

    slow = Ingestor(sqlite_ctx.store, sqlite_ctx.pipeline, parse=times_out)
    assert _ingest(slow, sqlite_ctx, path) == "failed"
    assert sqlite_ctx.ingestor.unchanged_record(path, collection="default") is None

    assert _ingest(slow, sqlite_ctx, path) == "failed"
    assert len(parse_calls) == 2  # parsed again, not rejected from memory

    assert _ingest(sqlite_ctx.ingestor, sqlite_ctx, path) != "failed"
    record = sqlite_ctx.ingestor.unchanged_record(path, collection="default")
    assert record is not None
    assert record.status == DocumentStatus.READY
