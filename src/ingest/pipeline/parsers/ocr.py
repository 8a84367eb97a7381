"""OCR with tesseract: images, and PDF pages that have no text layer.

Runs wherever the parser runs, which in production is the isolated parse child
(pipeline/isolation.py): its time and memory limits cover tesseract too, since a
child process inherits the address-space limit. Pages are read one at a time.
"""

from __future__ import annotations

import io
import os
import shutil
from typing import Any

from PIL import Image, ImageSequence

from ingest.errors import DocumentRejected
from ingest.pipeline.parse_progress import OcrUnit
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.segments import Segment

OCR_MODES = ("auto", "off", "force")
_LANGUAGE = "eng"
# Tesseract's OpenMP threads fight each other on a busy 2-core host: one thread
# per page is ~1.8 CPU-s, its default threads 29-46 CPU-s (docs/benchmarks.md).
_THREAD_ENV = {"OMP_THREAD_LIMIT": "1"}
# Rendering a PDF page for OCR: 300 dpi, capped so a poster-sized page stays small.
_RENDER_DPI = 300
_MAX_RENDER_PIXELS = 40_000_000


def ocr_unavailable_reason(mode: str) -> str | None:
    """Why OCR cannot run here, or None when it can."""
    if mode == "off":
        return "OCR is off (INGEST_OCR=off)"
    if shutil.which("tesseract") is None:
        return "OCR needs tesseract, which is not installed (apt-get install tesseract-ocr)"
    return None


def require_ocr(mode: str, what: str) -> None:
    """Fail the document, saying why, when OCR is needed but off or not installed."""
    reason = ocr_unavailable_reason(mode)
    if reason:
        raise DocumentRejected(f"{what} can only be read by OCR, and {reason}")


def ocr_image(image: Any) -> str:
    """The text tesseract reads on one page image."""
    import pytesseract  # imported here: only documents that need OCR pay for it

    os.environ.update(_THREAD_ENV)  # the tesseract subprocess inherits it
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    return str(pytesseract.image_to_string(image, lang=_LANGUAGE))


def render_pdf_page(page: Any) -> Any:
    """A PDFium page as a PIL image at up to 300 dpi."""
    width, height = page.get_size()  # in points (1/72 inch)
    scale = _RENDER_DPI / 72
    pixels = width * scale * height * scale
    if pixels > _MAX_RENDER_PIXELS:
        scale *= (_MAX_RENDER_PIXELS / pixels) ** 0.5
    bitmap = page.render(scale=scale, grayscale=True)
    try:
        return bitmap.to_pil()
    finally:
        bitmap.close()


def parse_image(data: bytes, budget: _TextBudget) -> list[Segment]:
    """An image file: one Segment per frame (a multi-page TIFF has several)."""
    require_ocr(budget.ocr, "an image")
    with Image.open(io.BytesIO(data)) as image:
        frames = getattr(image, "n_frames", 1)
        budget.check_pages(frames)
        unit: OcrUnit = "page" if frames > 1 else "image"
        segments = []
        for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
            budget.take_ocr_page()
            budget.ocr_progress(number - 1, frames, unit)
            text = budget.take(ocr_image(frame))
            segments.append(Segment(text=text, page=number if frames > 1 else None, ocr=True))
        budget.ocr_finished(frames, unit)
        return segments
