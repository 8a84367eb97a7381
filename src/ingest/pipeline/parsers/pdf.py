"""PDF: one Segment per page, through PDFium."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pypdfium2
import pypdfium2.raw as pdfium_raw

from ingest.errors import CorruptDocument, EmptyDocument
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.ocr import ocr_image, ocr_unavailable_reason, render_pdf_page
from ingest.pipeline.parsers.rtl import has_rtl, logical_order
from ingest.pipeline.segments import Segment

# PDFium is not thread-safe, not even across different documents: serialise it.
_PDFIUM_LOCK = threading.Lock()


def _parse_pdf(data: bytes, budget: _TextBudget) -> list[Segment]:
    with _PDFIUM_LOCK:
        pdf = _open_pdf(data)
        try:
            budget.check_pages(len(pdf))
            no_ocr = ocr_unavailable_reason(budget.ocr)
            segments = []
            image_pages = 0
            for index in range(len(pdf)):
                text, needed_ocr, read_by_ocr = _pdf_page_text(pdf, index, budget, no_ocr is None)
                image_pages += needed_ocr
                segments.append(Segment(text=budget.take(text), page=index + 1, ocr=read_by_ocr))
            budget.ocr_finished(len(pdf), "page")
        finally:
            pdf.close()
    if no_ocr and image_pages and not any(segment.text.strip() for segment in segments):
        raise EmptyDocument(
            f"no text could be extracted from this PDF file: its pages are images "
            f"without a text layer, and {no_ocr}"
        )
    return segments


def _open_pdf(data: bytes) -> Any:
    try:
        return pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_raw.FPDF_ERR_PASSWORD:
            raise CorruptDocument("PDF is password-protected") from exc
        raise


def _pdf_page_text(
    pdf: Any, index: int, budget: _TextBudget, can_ocr: bool
) -> tuple[str, bool, bool]:
    """The page's text, whether it is an image without a text layer that OCR
    could not read (OCR off or not installed), and whether OCR read it."""
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            text = _page_text(textpage)
        finally:
            textpage.close()
        wants_ocr = budget.ocr == "force" or _is_scan(page, text)
        if not wants_ocr:
            return text, False, False
        if not can_ocr:
            return text, True, False
        budget.take_ocr_page()
        budget.ocr_progress(index, len(pdf), "page")
        return ocr_image(render_pdf_page(page)), False, True
    finally:
        page.close()


def _page_text(textpage: Any) -> str:
    """The page's text, Arabic and Hebrew lines in logical order (parsers/rtl.py)."""
    text = str(textpage.get_text_range())
    if not has_rtl(text):
        return text
    return logical_order(text, _ligature_pairs(textpage, text))


def _ligature_pairs(textpage: Any, text: str) -> set[int]:
    """Indexes i where characters i and i+1 share one glyph's box: one glyph, two letters
    (lam-alef). Only lam/alef neighbours are looked at: boxes cost a call each."""
    if textpage.count_chars() != len(text):  # characters outside the BMP: no 1:1 index
        return set()
    return {
        index
        for index in range(len(text) - 1)
        if "\u0644" in text[index : index + 2]
        and text[index] != text[index + 1]
        and textpage.get_charbox(index) == textpage.get_charbox(index + 1)
    }


def _is_scan(page: Any, text: str) -> bool:
    """A page OCR should read: it draws an image and has no text layer (blank pages are
    not worth OCR's 2 CPU-s), or an image covers most of it and its text layer is too
    little for its area (a scan stamped with a Bates number or "CONFIDENTIAL")."""
    characters = len("".join(text.split()))
    if not characters:
        return any(True for _ in _images(page))
    width, height = page.get_size()
    if characters >= width * height / _POINTS_PER_SQUARE_INCH * _SPARSE_CHARS_PER_SQUARE_INCH:
        return False
    covered = sum(_area(image) for image in _images(page))
    return bool(covered >= _SCAN_COVER * width * height)


# A page of prose holds ~30 characters per square inch; a text layer of fewer than 2
# (under ~190 on a Letter or A4 page) over a page-sized image is a stamp on a scan.
_POINTS_PER_SQUARE_INCH = 72 * 72
_SPARSE_CHARS_PER_SQUARE_INCH = 2
# Images drawn over at least this share of the page: a scan, not a figure with a caption.
_SCAN_COVER = 0.5


def _images(page: Any) -> Iterator[Any]:
    return iter(page.get_objects(filter=(pdfium_raw.FPDF_PAGEOBJ_IMAGE,), max_depth=3))


def _area(image: Any) -> float:
    # get_bounds in pypdfium2 5, get_pos in 4: (left, bottom, right, top) in points.
    left, bottom, right, top = (getattr(image, "get_bounds", None) or image.get_pos)()
    return float(max(0.0, right - left) * max(0.0, top - bottom))
