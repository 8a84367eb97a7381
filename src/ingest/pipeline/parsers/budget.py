"""The cap on extracted text that every parser spends from."""

from __future__ import annotations

from ingest.errors import DocumentRejected


class _TextBudget:
    """Counts extracted characters so a huge document aborts as soon as it crosses the limit."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._used = 0

    def take(self, text: str) -> str:
        self._used += len(text)
        if self._used > self.max_chars:
            raise _too_much_text(self.max_chars)
        return text


def _too_much_text(max_chars: int) -> DocumentRejected:
    return DocumentRejected(f"extracted text exceeds the limit of {max_chars} characters")
