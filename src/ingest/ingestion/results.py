"""What ingesting files came to: one file's result, and a whole run's report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["added", "updated", "skipped", "failed"]


@dataclass(frozen=True, slots=True)
class FileResult:
    source: str
    outcome: Outcome
    document_id: str
    chunks: int = 0
    embedded: int = 0
    reason: str | None = None


@dataclass(slots=True)
class IngestReport:
    added: int = 0
    updated: int = 0
    skipped: int = 0
    deleted: int = 0
    failed: int = 0
    chunks: int = 0
    embedded: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    # Files rejected in an earlier run and unchanged since: not re-queued, still shown.
    known_failures: list[dict[str, str]] = field(default_factory=list)

    def record(self, result: FileResult) -> None:
        setattr(self, result.outcome, getattr(self, result.outcome) + 1)
        self.chunks += result.chunks
        self.embedded += result.embedded
        if result.reason:
            self.errors.append({"source": result.source, "reason": result.reason})

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "skipped": self.skipped,
            "deleted": self.deleted,
            "failed": self.failed,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "errors": self.errors,
            "known_failures": self.known_failures,
        }
