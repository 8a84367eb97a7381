"""OCR reports each page (image, picture, slide) it starts, in the parse process and
from the isolated parse child, through one callback; a killed child or a callback
that raises (a cancelled job) neither hangs the parent nor wedges the channel."""

from __future__ import annotations

import multiprocessing
import shutil
import threading
from pathlib import Path

import pytest

from ingest.errors import JobCancelled, ParseTimeout
from ingest.pipeline.isolation import IsolatedParser
from ingest.pipeline.parse_progress import ParseProgress
from ingest.pipeline.parsers import parse_document
from ingest.pipeline.segments import ParseLimits
from tests.fixtures_formats import (
    make_docx_with_margin_pictures,
    make_docx_with_picture,
    make_many_page_scan,
    make_pptx_with_pictures,
    make_text_png,
)
from tests.support.processes import wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract is not installed (scripts/setup)"
)

LINES = ["The quick brown fox jumps", "over the lazy dog 2026"]


def pages(total: int, unit: str = "page") -> list[ParseProgress]:
    """What OCR of every unit reports: each start, then the end."""
    return [ParseProgress(done, total, unit) for done in range(total + 1)]  # type: ignore[arg-type]


def parse_here(path: Path) -> list[ParseProgress]:
    events: list[ParseProgress] = []
    parse_document(path.read_bytes(), path.name, ParseLimits(), events.append)
    return events


def test_each_ocr_unit_is_reported_in_process(tmp_path: Path) -> None:
    scan = make_many_page_scan(tmp_path, "scan.pdf", 3, LINES)
    deck = make_pptx_with_pictures(
        tmp_path, "deck.pptx", [("One", "", LINES), ("Two", "", []), ("Three", "", LINES)]
    )
    memo = make_docx_with_picture(tmp_path, "memo.docx", "See below.", LINES)
    letter = make_docx_with_margin_pictures(tmp_path, "letter.docx", "Hi.", LINES, ["Footer"])

    assert parse_here(scan) == pages(3)
    assert parse_here(make_text_png(tmp_path, "note.png", LINES)) == pages(1, "image")
    # Slides 1 and 3 hold pictures; slide 2 none, so no OCR starts there.
    assert parse_here(deck) == [
        ParseProgress(0, 3, "slide"),
        ParseProgress(2, 3, "slide"),
        ParseProgress(3, 3, "slide"),
    ]
    assert parse_here(memo) == pages(1, "picture")
    assert parse_here(letter) == pages(2, "picture")  # the header's, then the footer's


@pytest.mark.parametrize(
    "error", [JobCancelled("cancelled at the user's request"), OSError("database is locked")]
)
def test_a_failing_callback_in_process_is_not_blamed_on_the_file(
    tmp_path: Path, error: Exception
) -> None:
    # Without isolation the job's own callback runs inside the parser: its error (a
    # cancel, a failed progress write) must not read as "not a valid PDF".
    scan = make_many_page_scan(tmp_path, "scan.pdf", 3, LINES)

    def fail(_: ParseProgress) -> None:
        raise error

    with pytest.raises(type(error)) as raised:
        parse_document(scan.read_bytes(), scan.name, ParseLimits(), fail)
    assert raised.value is error


def test_events_from_the_isolated_child_arrive_in_order(tmp_path: Path) -> None:
    scan = make_many_page_scan(tmp_path, "scan.pdf", 3, LINES)
    parser = IsolatedParser(workers=1, timeout_s=120, memory_mb=2048, limits=ParseLimits())
    events: list[ParseProgress] = []
    try:
        segments = parser.parse(scan.read_bytes(), scan.name, events.append)
        again: list[ParseProgress] = []
        parser.parse(scan.read_bytes(), scan.name, again.append)  # its own events only
    finally:
        parser.close()

    assert [segment.page for segment in segments] == [1, 2, 3]
    assert events == pages(3)
    assert again == pages(3)


def test_a_child_killed_at_the_time_limit_does_not_hang_the_parent(tmp_path: Path) -> None:
    scan = make_many_page_scan(tmp_path, "archive.pdf", 1_000, LINES)
    note = make_text_png(tmp_path, "note.png", LINES)
    limits = ParseLimits(max_ocr_pages=1_000)
    parser = IsolatedParser(workers=1, timeout_s=3, memory_mb=2048, limits=limits)
    killed: list[ParseProgress] = []
    after: list[ParseProgress] = []
    try:
        with pytest.raises(ParseTimeout):
            parser.parse(scan.read_bytes(), scan.name, killed.append)
        parser.parse(note.read_bytes(), note.name, after.append)  # the channel still works
    finally:
        parser.close()

    assert killed == pages(1_000)[: len(killed)]  # what arrived, in order, and no end
    assert after == pages(1, "image")
    assert_no_leftovers()


class Cancelled(Exception):
    pass


def test_a_callback_that_raises_stops_the_child(tmp_path: Path) -> None:
    # A job cancelled during OCR: its progress callback raises at a checkpoint.
    scan = make_many_page_scan(tmp_path, "archive.pdf", 1_000, LINES)
    note = make_text_png(tmp_path, "note.png", LINES)
    parser = IsolatedParser(
        workers=1, timeout_s=600, memory_mb=2048, limits=ParseLimits(max_ocr_pages=1_000)
    )
    children: set[int] = set()

    def cancel(_: ParseProgress) -> None:
        children.update(p.pid for p in multiprocessing.active_children() if p.pid)
        raise Cancelled

    try:
        with pytest.raises(Cancelled):
            parser.parse(scan.read_bytes(), scan.name, cancel)
        assert children
        # The child reading 1,000 pages is gone long before its time limit.
        wait_until(
            lambda: not children & {p.pid for p in multiprocessing.active_children()},
            60,
            message="the cancelled parse child to exit",
        )
        after: list[ParseProgress] = []
        parser.parse(note.read_bytes(), note.name, after.append)
    finally:
        parser.close()

    assert after == pages(1, "image")
    assert_no_leftovers()


def assert_no_leftovers() -> None:
    wait_until(lambda: not multiprocessing.active_children(), 30, message="parse children to exit")
    alive = [t.name for t in threading.enumerate() if t.name == "parse-progress"]
    assert alive == []
