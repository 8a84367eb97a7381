"""The cap on extracted text that every parser spends from."""

from __future__ import annotations

from ingest.errors import DocumentRejected, IngestError
from ingest.pipeline.parse_progress import OcrUnit, ParseProgress, ParseProgressCallback


class _TextBudget:
    """Counts extracted characters so a huge document aborts as soon as it crosses the
    limit; refuses a document with more pages than allowed before any is read.
    Carries OCR's settings and its progress callback to the parsers."""

    def __init__(
        self,
        max_chars: int,
        max_pages: int,
        ocr: str = "auto",
        *,
        max_ocr_pages: int = 100,
        on_ocr: ParseProgressCallback | None = None,
    ) -> None:
        self.max_chars = max_chars
        self.max_pages = max_pages
        self.ocr = ocr  # INGEST_OCR: "auto", "off" or "force"; carried to the parsers here
        self.max_ocr_pages = max_ocr_pages
        self._on_ocr = on_ocr
        self._used = 0
        self._ocr_pages = 0
        self._ocr_reported = False

    def ocr_progress(self, done: int, total: int, unit: OcrUnit) -> None:
        """OCR of unit `done + 1` of `total` starts (page, image, picture or slide)."""
        self._ocr_reported = True
        if self._on_ocr is None:
            return
        try:
            self._on_ocr(ParseProgress(done, total, unit))
        except IngestError:
            raise  # a cancelled job, a worker stopping: not the file's fault, and says so
        except Exception as exc:
            raise ProgressFailed(exc) from exc

    def ocr_finished(self, total: int, unit: OcrUnit) -> None:
        """The document's OCR is over: `total` of `total`, if any progress was reported."""
        if self._ocr_reported:
            self.ocr_progress(total, total, unit)

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


class ProgressFailed(Exception):
    """The progress callback failed (run in this process: a database error writing
    the job's progress). Re-raised as it was, not as a corrupt file."""

    def __init__(self, original: Exception) -> None:
        super().__init__(str(original))
        self.original = original


def _too_much_text(max_chars: int) -> DocumentRejected:
    return DocumentRejected(f"extracted text exceeds the limit of {max_chars} characters")
