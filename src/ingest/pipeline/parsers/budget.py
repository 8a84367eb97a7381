"""The cap on extracted text that every parser spends from."""

from __future__ import annotations

from ingest.errors import DocumentRejected


class _TextBudget:
    """Counts extracted characters so a huge document aborts as soon as it crosses the
    limit; refuses a document with more pages than allowed before any is read."""

    def __init__(
        self, max_chars: int, max_pages: int, ocr: str = "auto", *, max_ocr_pages: int = 100
    ) -> None:
        self.max_chars = max_chars
        self.max_pages = max_pages
        self.ocr = ocr  # INGEST_OCR: "auto", "off" or "force"; carried to the parsers here
        self.max_ocr_pages = max_ocr_pages
        self._used = 0
        self._ocr_pages = 0

    def take_ocr_page(self) -> None:
        """Count one page, frame or picture about to go through OCR (~2 CPU-s): a
        10,000-page scan fails here with a reason, not at the parse timeout."""
        self._ocr_pages += 1
        if self._ocr_pages > self.max_ocr_pages:
            raise DocumentRejected(
                f"the document needs OCR on more than {self.max_ocr_pages:,} pages or "
                "pictures (INGEST_OCR_MAX_PAGES; about 2 CPU-s each)"
            )

    def check_pages(self, pages: int, unit: str = "pages") -> None:
        # A 16 MB PDF can hold 100,000 blank pages: each would become a chunk.
        if pages > self.max_pages:
            raise DocumentRejected(
                f"the document has {pages:,} {unit}, over the limit of "
                f"{self.max_pages:,} (INGEST_MAX_PAGES)"
            )

    def take(self, text: str) -> str:
        self._used += len(text)
        if self._used > self.max_chars:
            raise _too_much_text(self.max_chars)
        return text


def _too_much_text(max_chars: int) -> DocumentRejected:
    return DocumentRejected(f"extracted text exceeds the limit of {max_chars} characters")
