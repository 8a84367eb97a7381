"""OCR: images and image-only PDF pages read by tesseract, or refused with a reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.errors import DocumentRejected, EmptyDocument
from ingest.pipeline.parsers import parse_document
from ingest.pipeline.parsers.sniff import check_upload
from ingest.pipeline.segments import ParseLimits, Segment
from tests.fixtures_formats import make_pdf_with_wrong_text_layer, make_scanned_pdf, make_text_png

LINES = ["The quick brown fox jumps", "over the lazy dog 2026"]

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract is not installed (scripts/setup)"
)


def parse(path: Path, ocr: str = "auto") -> list[Segment]:
    return parse_document(path.read_bytes(), path.name, ParseLimits(ocr=ocr))


def words(segments: list[Segment]) -> list[str]:
    return " ".join(segment.text for segment in segments).split()


@needs_tesseract
def test_png_is_read_by_ocr(tmp_path: Path) -> None:
    segments = parse(make_text_png(tmp_path, "note.png", LINES))

    assert words(segments) == " ".join(LINES).split()


@needs_tesseract
def test_image_only_pdf_page_is_read_by_ocr(tmp_path: Path) -> None:
    segments = parse(make_scanned_pdf(tmp_path, "scan.pdf", LINES))

    assert [segment.page for segment in segments] == [1]
    assert words(segments) == " ".join(LINES).split()


def test_image_with_ocr_off_fails_saying_so(tmp_path: Path) -> None:
    path = make_text_png(tmp_path, "note.png", LINES)

    with pytest.raises(
        DocumentRejected, match=r"only be read by OCR, and OCR is off \(INGEST_OCR=off\)"
    ):
        parse(path, ocr="off")


def test_image_only_pdf_with_ocr_off_fails_saying_so(tmp_path: Path) -> None:
    path = make_scanned_pdf(tmp_path, "scan.pdf", LINES)

    with pytest.raises(EmptyDocument, match=r"pages are images .*OCR is off \(INGEST_OCR=off\)"):
        parse(path, ocr="off")


def test_missing_tesseract_fails_saying_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty PATH: the real lookup, on a machine without the binary.
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    path = make_text_png(tmp_path, "note.png", LINES)

    with pytest.raises(DocumentRejected, match="tesseract, which is not installed"):
        parse(path)


def test_png_upload_is_checked_by_its_signature() -> None:
    check_upload("scan.png", b"\x89PNG\r\n\x1a\nrest")
    with pytest.raises(DocumentRejected, match="the content is not a PNG file"):
        check_upload("scan.png", b"GIF89a")


@needs_tesseract
def test_ocr_runs_inside_the_isolated_parse_process(tmp_path: Path) -> None:
    from ingest.pipeline.isolation import IsolatedParser

    path = make_scanned_pdf(tmp_path, "scan.pdf", LINES)
    parser = IsolatedParser(workers=1, timeout_s=300, memory_mb=2048, limits=ParseLimits())
    try:
        segments = parser.parse(path.read_bytes(), path.name)
    finally:
        parser.close()

    assert words(segments) == " ".join(LINES).split()


@needs_tesseract
def test_force_reads_what_the_page_shows_not_its_text_layer(tmp_path: Path) -> None:
    path = make_pdf_with_wrong_text_layer(tmp_path, "bad-layer.pdf", LINES, "garbled layer")

    assert words(parse(path)) == ["garbled", "layer"]
    assert words(parse(path, ocr="force")) == " ".join(LINES).split()
