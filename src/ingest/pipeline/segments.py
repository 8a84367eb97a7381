"""What a parser returns: the text of a document, cut where its structure cuts it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of text with where it came from: a PDF page, a slide, a section under a heading."""

    text: str
    page: int | None = None
    heading: str | None = None
    # Some of the text was read by OCR (a scanned page, an image, a slide's picture):
    # its chunks say so (`ocr: true`), since OCR text may hold misread words.
    ocr: bool = False


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds every parser honours so one file cannot take the process down."""

    max_text_chars: int = 20_000_000
    # Pages (PDF) or slides (PPTX): counted before any text is extracted.
    max_pages: int = 5_000
    # INGEST_OCR: "auto" reads image-only PDF pages (and scans with only a stamp for a
    # text layer) and images with tesseract,
    # "force" every PDF page too, "off" never.
    ocr: str = "auto"
    # Pages, image frames and Office pictures read by OCR in one document (~2 CPU-s each).
    max_ocr_pages: int = 100


@dataclass(frozen=True, slots=True)
class ContainerLimits:
    """Bounds on expanding one top-level container (a .zip, an e-mail's attachments),
    nested containers included: INGEST_CONTAINER_MAX_*."""

    max_depth: int = 3
    max_files: int = 1000
    max_expanded_bytes: int = 1024 * 1024 * 1024
    # INGEST_MAX_FILE_BYTES: a bigger member is not spilled; its child document fails.
    max_member_bytes: int = 50 * 1024 * 1024
