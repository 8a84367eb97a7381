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


class HeadingPath:
    """Sections headed by their path of titles: "Chapter 2 > Pricing"."""

    def __init__(self) -> None:
        self._path: list[tuple[int, str]] = []
        self._lines: list[str] = []
        self._segments: list[Segment] = []
        self._ocr = False  # some line of the current section was read by OCR

    def start(self, level: int, title: str) -> None:
        self._flush()
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        title = " ".join(title.split())
        if title:
            self._path.append((level, title))

    def add(self, line: str, ocr: bool = False) -> None:
        self._lines.append(line)
        self._ocr = self._ocr or ocr

    def segments(self) -> list[Segment]:
        self._flush()
        return self._segments

    def _flush(self) -> None:
        text = "\n".join(self._lines).strip()
        if text:
            heading = " > ".join(title for _, title in self._path) or None
            self._segments.append(Segment(text=text, heading=heading, ocr=self._ocr))
        self._lines = []
        self._ocr = False


def _split_markdown(text: str) -> list[Segment]:
    """One Segment per ATX-heading section, headed by its heading path ("Guide > Install");
    the heading line stays in the section's text."""
    sections = HeadingPath()
    fence: str | None = None  # the opening fence while inside a fenced code block
    for line in text.split("\n"):
        fence_match = _FENCE.match(line)
        if fence is not None:
            if fence_match and _closes_fence(fence, fence_match):
                fence = None
        elif fence_match and not (fence_match.group(1)[0] == "`" and "`" in fence_match.group(2)):
            fence = fence_match.group(1)
        elif heading_match := _ATX_HEADING.match(line):
            sections.start(len(heading_match.group(1)), heading_match.group(2) or "")
        sections.add(line)
    return sections.segments()


def _closes_fence(opening: str, match: re.Match[str]) -> bool:
    marker = match.group(1)
    return marker[0] == opening[0] and len(marker) >= len(opening) and not match.group(2).strip()
