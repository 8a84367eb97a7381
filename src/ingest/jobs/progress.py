"""Progress of a running job: the value a handler reports, and the pure arithmetic
from a stage's (current, total) to the job's fraction 0..1."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Progress:
    stage: str
    current: int
    total: int
    message: str = ""


ProgressCallback = Callable[[Progress], None]


def ignore_progress(_: Progress) -> None:
    return None


# Where each ingestion stage sits on the 0..1 scale. Embedding dominates the
# wall time, so it gets most of the bar. Other stages span the whole bar.
_STAGE_SPANS: dict[str, tuple[float, float]] = {
    "read": (0.0, 0.02),
    "parse": (0.02, 0.10),
    # OCR inside the parse (pipeline/parse_progress.py): page by page, within its span.
    "ocr": (0.02, 0.10),
    "chunk": (0.10, 0.15),
    "embed": (0.15, 0.95),
    # A container's members, after its own text (so the bar never runs backwards);
    # the stage's current/total and message count them.
    "members": (0.95, 0.99),
    "write": (0.99, 1.0),
}


def overall_fraction(stage: str, current: int, total: int) -> float:
    start, end = _STAGE_SPANS.get(stage, (0.0, 1.0))
    within = 1.0 if total <= 0 else min(1.0, max(0.0, current / total))
    return round(start + (end - start) * within, 4)
