"""OCR: images and image-only PDF pages read by tesseract, or refused with a reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.errors import DocumentRejected, EmptyDocument, ParseTimeout
from ingest.pipeline.parsers import parse_document
from ingest.pipeline.parsers.sniff import check_upload
from ingest.pipeline.segments import ParseLimits, Segment
from tests.fixtures_formats import (
    make_docx_with_margin_pictures,
    make_docx_with_picture,
    make_docx_with_vml_picture,
    make_many_page_scan,
    make_pdf_with_wrong_text_layer,
    make_pptx_with_pictures,
    make_scanned_pdf,
    make_stamped_scan,
    make_text_image,
    make_text_png,
)

LINES = ["The quick brown fox jumps", "over the lazy dog 2026"]

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract is not installed (scripts/setup)"
)


OTHER = ["Invoices are due within thirty days"]
PICTURE = "[Picture: " + "\n".join(LINES) + "]"  # how a picture's OCR text is marked
PROSE = "Quarterly revenue grew in every region we serve. " * 4  # ~200 characters


def parse(path: Path, ocr: str = "auto", **limits: int) -> list[Segment]:
    return parse_document(path.read_bytes(), path.name, ParseLimits(ocr=ocr, **limits))


def words(segments: list[Segment]) -> list[str]:
    return " ".join(segment.text for segment in segments).split()


@needs_tesseract
def test_png_is_read_by_ocr(tmp_path: Path) -> None:
    segments = parse(make_text_png(tmp_path, "note.png", LINES))

    assert words(segments) == " ".join(LINES).split()
    assert [segment.ocr for segment in segments] == [True]


@needs_tesseract
@pytest.mark.parametrize("name", ["photo.jpg", "photo.jpeg", "scan.tif", "shot.webp"])
def test_every_image_format_is_read_by_ocr(tmp_path: Path, name: str) -> None:
    segments = parse(make_text_image(tmp_path, name, [LINES]))

    assert words(segments) == " ".join(LINES).split()
    assert [(segment.page, segment.ocr) for segment in segments] == [(None, True)]


@needs_tesseract
def test_multi_page_tiff_is_one_segment_per_frame_numbered_from_one(tmp_path: Path) -> None:
    segments = parse(make_text_image(tmp_path, "fax.tiff", [LINES, OTHER]))

    assert [(segment.page, segment.ocr) for segment in segments] == [(1, True), (2, True)]
    assert [segment.text.split() for segment in segments] == [
        " ".join(LINES).split(),
        OTHER[0].split(),
    ]


@needs_tesseract
def test_image_only_pdf_page_is_read_by_ocr(tmp_path: Path) -> None:
    segments = parse(make_scanned_pdf(tmp_path, "scan.pdf", LINES))

    assert [(segment.page, segment.ocr) for segment in segments] == [(1, True)]
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


@needs_tesseract
def test_scan_whose_text_layer_is_only_a_stamp_is_read_by_ocr(tmp_path: Path) -> None:
    path = make_stamped_scan(tmp_path, "exhibit.pdf", LINES, "ACME-000123")

    (segment,) = parse(path)

    assert (segment.page, segment.ocr) == (1, True)
    assert words([segment])[: len(" ".join(LINES).split())] == " ".join(LINES).split()
    assert words(parse(path, ocr="off")) == ["ACME-000123"], "without OCR, the stamp is kept"


# --- pictures inside Office documents -----------------------------------------------


@needs_tesseract
def test_pptx_picture_is_read_on_a_slide_without_text_of_its_own(tmp_path: Path) -> None:
    path = make_pptx_with_pictures(
        tmp_path, "deck.pptx", [("Scanned memo", "", LINES), ("Results", PROSE, OTHER)]
    )

    scanned, results = parse(path)

    assert scanned.heading == "Scanned memo"
    assert scanned.text == f"Scanned memo\n{PICTURE}"
    assert (scanned.ocr, results.ocr) == (True, False)
    assert "Invoices" not in results.text, "auto: a slide with text of its own keeps just that"
    assert "[Picture: Invoices are due within thirty days]" in parse(path, ocr="force")[1].text


@needs_tesseract
def test_docx_picture_is_read_where_it_stands(tmp_path: Path) -> None:
    path = make_docx_with_picture(tmp_path, "memo.docx", "Intro", LINES)

    (segment,) = parse(path)

    assert [line for line in segment.text.splitlines() if line] == [
        "Intro",
        *PICTURE.splitlines(),
        "The end.",
    ]
    assert segment.ocr
    assert not parse(path, ocr="off")[0].ocr


@needs_tesseract
def test_docx_vml_picture_is_read_where_it_stands(tmp_path: Path) -> None:
    path = make_docx_with_vml_picture(tmp_path, "old.docx", "Intro", LINES)

    (segment,) = parse(path)

    assert [line for line in segment.text.splitlines() if line] == [
        "Intro",
        *PICTURE.splitlines(),
        "The end.",
    ]
    assert segment.ocr


@needs_tesseract
def test_docx_header_and_footer_pictures_are_read_their_text_left_out(tmp_path: Path) -> None:
    path = make_docx_with_margin_pictures(tmp_path, "letter.docx", "Intro", LINES, OTHER)

    (segment,) = parse(path)

    assert [line for line in segment.text.splitlines() if line] == [
        *PICTURE.splitlines(),  # the header's picture first
        "Intro",
        "[Picture: Invoices are due within thirty days]",  # the footer's last
    ]
    assert segment.ocr
    assert "boilerplate" not in parse(path, ocr="off")[0].text


def test_office_pictures_with_ocr_off_fail_saying_so(tmp_path: Path) -> None:
    path = make_pptx_with_pictures(tmp_path, "scan.pptx", [("", "", LINES)])

    with pytest.raises(
        EmptyDocument, match=r"its only content is 1 picture, and OCR is off \(INGEST_OCR=off\)"
    ):
        parse(path, ocr="off")
    assert words(parse(make_docx_with_picture(tmp_path, "m.docx", "Intro", LINES), "off")) == [
        "Intro",
        "The",
        "end.",
    ]


@needs_tesseract
def test_a_picture_repeated_on_every_slide_is_read_once(tmp_path: Path) -> None:
    path = make_pptx_with_pictures(tmp_path, "logo.pptx", [("", "", LINES)] * 3)

    segments = parse(path, max_ocr_pages=1)  # three slides, one OCR

    assert [segment.text for segment in segments] == [PICTURE] * 3


@needs_tesseract
def test_more_pictures_than_the_ocr_budget_fail_with_the_setting_named(tmp_path: Path) -> None:
    path = make_pptx_with_pictures(tmp_path, "deck.pptx", [("", "", LINES), ("", "", OTHER)])

    with pytest.raises(DocumentRejected, match=r"OCR on more than 1 pages .*INGEST_OCR_MAX_PAGES"):
        parse(path, max_ocr_pages=1)


# --- a 10,000-page scan -------------------------------------------------------------


def test_ten_thousand_page_scan_is_refused_by_the_page_limit(tmp_path: Path) -> None:
    path = make_many_page_scan(tmp_path, "archive.pdf", 10_000, LINES)

    with pytest.raises(DocumentRejected, match=r"10,000 pages, over the limit .*INGEST_MAX_PAGES"):
        parse(path)


@needs_tesseract
def test_ten_thousand_page_scan_stops_at_the_ocr_budget(tmp_path: Path) -> None:
    path = make_many_page_scan(tmp_path, "archive.pdf", 10_000, LINES)

    with pytest.raises(DocumentRejected, match=r"OCR on more than 1 pages .*INGEST_OCR_MAX_PAGES"):
        parse(path, max_pages=10_000, max_ocr_pages=1)


@needs_tesseract
def test_ten_thousand_page_scan_past_the_parse_timeout_leaves_the_parser_working(
    tmp_path: Path,
) -> None:
    from ingest.pipeline.isolation import IsolatedParser

    scan = make_many_page_scan(tmp_path, "archive.pdf", 10_000, LINES)
    note = make_text_png(tmp_path, "note.png", LINES)
    limits = ParseLimits(max_pages=10_000, max_ocr_pages=10_000)
    parser = IsolatedParser(workers=1, timeout_s=3, memory_mb=2048, limits=limits)
    try:
        with pytest.raises(ParseTimeout, match=r"longer than 3 s .*INGEST_PARSE_TIMEOUT_SECONDS"):
            parser.parse(scan.read_bytes(), scan.name)
        segments = parser.parse(note.read_bytes(), note.name)  # the next document
    finally:
        parser.close()

    assert words(segments) == " ".join(LINES).split()
