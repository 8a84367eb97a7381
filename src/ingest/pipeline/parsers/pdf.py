"""PDF: one Segment per page, through PDFium."""

from __future__ import annotations

import threading
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
        wants_ocr = budget.ocr == "force" or (not text.strip() and _has_images(page))
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


def _has_images(page: Any) -> bool:
    """Whether the page draws any image: a scan. Blank pages are not worth OCR's 2 CPU-s."""
    objects = page.get_objects(filter=(pdfium_raw.FPDF_PAGEOBJ_IMAGE,), max_depth=3)
    return any(True for _ in objects)
