"""Marked-up text: reStructuredText (sections), XML (its text content), RTF (its text)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree
from defusedxml import DefusedXmlException
from docutils import nodes
from docutils.core import publish_doctree
from striprtf.striprtf import rtf_to_text

from ingest.errors import CorruptDocument, DocumentRejected
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.decoding import _decode_text
from ingest.pipeline.segments import Segment

# --- reStructuredText ------------------------------------------------------------

# No file inclusion, no raw passthrough, no system messages in the text: the
# document is untrusted input and only its own prose matters.
_RST_SETTINGS = {
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "report_level": 5,
    "halt_level": 5,
    "warning_stream": io.StringIO(),
    "input_encoding": "unicode",
    "doctitle_xform": False,  # keep a lone top title as a section: its name heads the text
}


def _parse_rst(data: bytes, budget: _TextBudget) -> list[Segment]:
    source = budget.take(_decode_text(data, "a text file (.rst)"))
    doctree = publish_doctree(source, settings_overrides=dict(_RST_SETTINGS))
    segments: list[Segment] = []
    _collect_rst_sections(doctree, [], segments)
    return segments


def _collect_rst_sections(node: Any, path: list[str], out: list[Segment]) -> None:
    """One Segment per section, headed by its path of titles ("Guide > Install")."""
    blocks: list[str] = []
    for child in node.children:
        if isinstance(child, nodes.section):
            _flush_rst(blocks, path, out)
            blocks = []
            title = child.next_node(nodes.title)
            heading = title.astext().strip() if title is not None else ""
            _collect_rst_sections(child, [*path, heading] if heading else path, out)
        elif not isinstance(child, nodes.system_message | nodes.comment):
            blocks.append(child.astext())
    _flush_rst(blocks, path, out)


def _flush_rst(blocks: list[str], path: list[str], out: list[Segment]) -> None:
    text = "\n\n".join(block.strip() for block in blocks if block.strip())
    if text:
        out.append(Segment(text=text, heading=" > ".join(path) or None))


# --- XML -------------------------------------------------------------------------


def _parse_xml(data: bytes, budget: _TextBudget) -> list[Segment]:
    try:
        # Entities and DTDs are refused outright: "billion laughs" and external
        # entities (file or network reads) never expand.
        root = _xml_root(data)
    except DefusedXmlException as exc:
        raise DocumentRejected(
            "the XML file declares a DTD or entities, which are refused for safety"
        ) from exc
    except SyntaxError as exc:  # xml.etree.ElementTree.ParseError
        raise CorruptDocument(f"not a valid XML file: {exc}") from exc
    lines = [budget.take(line) for line in _xml_text_lines(root)]
    return [Segment(text="\n".join(lines))]


_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def _xml_root(data: bytes) -> Element:
    try:
        root: Element = defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
    except SyntaxError as exc:
        if "encoding" not in str(exc):
            raise
        # A declaration that contradicts the bytes (UTF-16 with a BOM that says
        # encoding="UTF-8" is common): trust the bytes, drop the declaration.
        text = _XML_DECLARATION.sub("", _decode_text(data, "an XML file"), count=1)
        root = defusedxml.ElementTree.fromstring(text, forbid_dtd=True)
    return root


def _xml_text_lines(root: Element) -> Iterator[str]:
    """Each non-blank run of text, one per line, in document order.

    Iterative (an element's text, its children, then its tail): a deeply nested
    file cannot hit the recursion limit.
    """
    stack: list[tuple[Element, bool]] = [(root, False)]
    while stack:
        element, closing = stack.pop()
        text = element.tail if closing else element.text
        if text and text.strip():
            yield " ".join(text.split())
        if not closing:
            if element is not root:
                stack.append((element, True))
            stack.extend((child, False) for child in reversed(element))


# --- RTF -------------------------------------------------------------------------


def _parse_rtf(data: bytes, budget: _TextBudget) -> list[Segment]:
    if not data.lstrip().startswith(b"{\\rtf"):
        if not data.strip():
            return []
        raise CorruptDocument("not a valid RTF file: it does not start with {\\rtf")
    # RTF is 7-bit: non-ASCII characters are escapes; striprtf decodes \'hh as cp1252.
    source = data.decode("latin-1")
    text: str = rtf_to_text(source, errors="replace")  # type: ignore[no-untyped-call]
    return [Segment(text=budget.take(text))]
