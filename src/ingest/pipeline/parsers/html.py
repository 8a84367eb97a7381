"""Web pages: the main content as Markdown, without navigation, footers or banners."""

from __future__ import annotations

import re
from typing import Any

import trafilatura

from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.decoding import _decode_text
from ingest.pipeline.parsers.text import _split_markdown
from ingest.pipeline.segments import Segment

_HTML_DOCUMENT = re.compile(r"<(html|body)[\s>]", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)


def _parse_html(data: bytes, budget: _TextBudget) -> list[Segment]:
    html = _decode_html(data, "an HTML file")
    markdown = budget.take(_html_to_markdown(html))
    return _split_markdown(markdown)


def _decode_html(data: bytes, where: str, declared: str | None = None) -> str:
    if declared is None:
        meta = _META_CHARSET.search(data[:4096])
        declared = meta.group(1).decode("ascii") if meta else None
    return _decode_text(data, where, declared)


def _html_to_markdown(html: str) -> str:
    """The main content of a page as Markdown, without navigation, footers or cookie banners.

    Returns "" when trafilatura finds no main content even when favouring recall.
    """
    if not _HTML_DOCUMENT.search(html[:65536]):
        # trafilatura rejects a bare fragment ("<h3>..</h3>" alone) as dubious HTML.
        html = f"<html><body><div>{html}</div></body></html>"
    options: dict[str, Any] = {
        "output_format": "markdown",
        "include_tables": True,
        "include_comments": False,
    }
    markdown = trafilatura.extract(html, favor_precision=False, **options)
    if not markdown or not markdown.strip():
        markdown = trafilatura.extract(html, favor_recall=True, **options)
    return str(markdown or "")
