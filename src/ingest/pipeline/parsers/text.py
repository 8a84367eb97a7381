"""Plain text and Markdown; the heading-section splitting that HTML and DOCX reuse."""

from __future__ import annotations

import re

from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.decoding import _decode_text
from ingest.pipeline.segments import Segment


def _parse_txt(data: bytes, budget: _TextBudget) -> list[Segment]:
    text = budget.take(_decode_text(data, "a text file (.txt)"))
    return [Segment(text=text)]


def _parse_markdown(data: bytes, budget: _TextBudget) -> list[Segment]:
    text = budget.take(_decode_text(data, "a text file (.md)"))
    return _split_markdown(text)


_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


class _SectionCollector:
    """Gathers lines into Segments, starting a new Segment at each heading."""

    def __init__(self, page: int | None = None) -> None:
        self._page = page
        self._heading: str | None = None
        self._lines: list[str] = []
        self._segments: list[Segment] = []

    def start_section(self, heading: str | None) -> None:
        self._flush()
        self._heading = heading

    def add(self, line: str) -> None:
        self._lines.append(line)

    def segments(self) -> list[Segment]:
        self._flush()
        return self._segments

    def _flush(self) -> None:
        text = "\n".join(self._lines).strip()
        if text:
            self._segments.append(Segment(text=text, page=self._page, heading=self._heading))
        self._lines = []


def _split_markdown(text: str) -> list[Segment]:
    """One Segment per ATX-heading section; the heading line stays in the section's text."""
    sections = _SectionCollector()
    fence: str | None = None  # the opening fence while inside a fenced code block
    for line in text.split("\n"):
        fence_match = _FENCE.match(line)
        if fence is not None:
            if fence_match and _closes_fence(fence, fence_match):
                fence = None
        elif fence_match and not (fence_match.group(1)[0] == "`" and "`" in fence_match.group(2)):
            fence = fence_match.group(1)
        elif heading_match := _ATX_HEADING.match(line):
            sections.start_section((heading_match.group(2) or "").strip() or None)
        sections.add(line)
    return sections.segments()


def _closes_fence(opening: str, match: re.Match[str]) -> bool:
    marker = match.group(1)
    return marker[0] == opening[0] and len(marker) >= len(opening) and not match.group(2).strip()
