"""PDF: one Segment per page, through PDFium."""

from __future__ import annotations

import threading
from typing import Any

import pypdfium2
import pypdfium2.raw as pdfium_raw

from ingest.errors import CorruptDocument
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.segments import Segment

# PDFium is not thread-safe, not even across different documents: serialise it.
_PDFIUM_LOCK = threading.Lock()


def _parse_pdf(data: bytes, budget: _TextBudget) -> list[Segment]:
    with _PDFIUM_LOCK:
        pdf = _open_pdf(data)
        try:
            budget.check_pages(len(pdf))
            segments = []
            for index in range(len(pdf)):
                text = budget.take(_pdf_page_text(pdf, index))
                segments.append(Segment(text=text, page=index + 1))
            return segments
        finally:
            pdf.close()


def _open_pdf(data: bytes) -> Any:
    try:
        return pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_raw.FPDF_ERR_PASSWORD:
            raise CorruptDocument("PDF is password-protected") from exc
        raise


def _pdf_page_text(pdf: Any, index: int) -> str:
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            return str(textpage.get_text_range())
        finally:
            textpage.close()
    finally:
        page.close()
