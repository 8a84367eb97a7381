"""OCR of the pictures inside Office documents (PPTX slides, DOCX bodies).

A scanned page pasted into Word, or a slide that is one screenshot, holds its text
only in a picture. With INGEST_OCR=auto a slide's pictures (a document's, for DOCX)
are read when it has little text of its own; `force` reads them always, `off` never.
Every picture read counts against INGEST_OCR_MAX_PAGES, like a PDF page; the same
picture used again (a logo on every slide) is read once. Runs in the isolated parse
process, so its time and memory limits cover it.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from typing import Any

from PIL import Image

from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.ocr import ocr_image, ocr_unavailable_reason

# "Little text of its own": fewer non-space characters than this per picture.
TEXT_PER_PICTURE = 100
# Bounds on one picture: bytes of the stored file, pixels once decoded (~160 MB at
# most as RGBA), and the smallest that can hold a line of text (icons, bullets).
_MAX_PICTURE_BYTES = 20 * 1024 * 1024
_MAX_PICTURE_PIXELS = 40_000_000
_MIN_WIDTH, _MIN_HEIGHT = 48, 16
# How a picture's text starts in the document's text.
PICTURE_PREFIX = "[Picture: "


class PictureReader:
    """Reads pictures by OCR for one document, within its budget."""

    def __init__(self, budget: _TextBudget, *, count: int = 0) -> None:
        """`count`: the pictures `read` will be given, for progress ("picture 2 of
        5"); 0 when the caller reports progress itself (PPTX, by slide)."""
        self._budget = budget
        self._texts: dict[str, str] = {}
        self._count = count
        self._reads = 0
        # Why pictures are not read here (OCR off, tesseract missing), or None.
        self.unavailable = ocr_unavailable_reason(budget.ocr)

    def wanted(self, own_text: str, pictures: int) -> bool:
        """Whether a slide or document with `own_text` and `pictures` should be OCRed."""
        if pictures == 0 or self.unavailable:
            return False
        if self._budget.ocr == "force":
            return True
        return len("".join(own_text.split())) < TEXT_PER_PICTURE * pictures

    def read(self, blob: bytes) -> str:
        """The picture's text as a `[Picture: ...]` line, or "" when it has none or
        cannot be read (a vector format such as EMF, too small, too large)."""
        if self._count:
            self._budget.ocr_progress(self._reads, max(self._count, self._reads + 1), "picture")
            self._reads += 1
        key = hashlib.sha256(blob).hexdigest()
        if key not in self._texts:
            self._texts[key] = self._ocr(blob)
        text = self._texts[key]
        return f"{PICTURE_PREFIX}{text}]" if text else ""

    def finish(self) -> None:
        """Every picture was given to `read`: OCR's progress is complete."""
        if self._count:
            self._budget.ocr_finished(max(self._count, self._reads), "picture")

    def _ocr(self, blob: bytes) -> str:
        image = _raster(blob)
        if image is None:
            return ""
        with image:
            self._budget.take_ocr_page()
            text = ocr_image(_on_white(image))
        return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def _on_white(image: Any) -> Any:
    """A picture with transparency, flattened onto white: dropping the alpha channel
    would leave black text on the black its transparent pixels hold."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image


def _raster(blob: bytes) -> Any:
    """The picture decoded, or None when it is not worth or not possible to OCR."""
    if len(blob) > _MAX_PICTURE_BYTES:
        return None
    try:
        with warnings.catch_warnings():
            # Pillow only warns below its own bomb limit; here any bomb is skipped.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(blob))
            width, height = image.size
            if width < _MIN_WIDTH or height < _MIN_HEIGHT or width * height > _MAX_PICTURE_PIXELS:
                image.close()
                return None
            image.load()
    except Exception:  # WMF/EMF/SVG or a broken picture: skip it, keep the document
        return None
    return image
