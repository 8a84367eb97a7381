"""OpenDocument: ODT (sections under headings), ODS (sheets), ODP (slides).

A direct walk of content.xml, parsed with defusedxml (no DTDs, no entities):
the files are zip archives of plain XML, and the walk keeps what a generic
converter would flatten: heading paths, tables as Markdown, comments, notes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from xml.etree.ElementTree import Element

import defusedxml.ElementTree

from ingest.errors import CorruptDocument
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.office import _check_office_container
from ingest.pipeline.parsers.tables import markdown_table
from ingest.pipeline.parsers.text import HeadingPath
from ingest.pipeline.segments import Segment

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_DRAW = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_PRESENTATION = "{urn:oasis:names:tc:opendocument:xmlns:presentation:1.0}"
_DC = "{http://purl.org/dc/elements/1.1/}"

_ODT_CONTAINERS = {f"{_TEXT}{tag}" for tag in ("list", "list-item", "list-header", "section")}

# A repeated non-empty cell or row is expanded at most this often: a sheet may
# declare a value repeated a million times across empty columns.
_MAX_REPEAT = 100
_MAX_EMPTY_REPEAT = 1_000


def _odf_body(data: bytes, kind: str, legacy_ext: str, body_tag: str) -> Element:
    _check_office_container(data, kind, legacy_ext)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if _is_encrypted(archive):
            raise CorruptDocument(f"not a valid {kind} file: it is password-protected")
        try:
            content = archive.read("content.xml")
        except KeyError:
            raise CorruptDocument(f"not a valid {kind} file: it has no content.xml") from None
    root: Element = defusedxml.ElementTree.fromstring(content, forbid_dtd=True)
    body = root.find(f"{_OFFICE}body/{_OFFICE}{body_tag}")
    if body is None:
        raise CorruptDocument(f"not a valid {kind} file: no {body_tag} body in content.xml")
    return body


def _is_encrypted(archive: zipfile.ZipFile) -> bool:
    """A password-protected ODF file is still a zip; its manifest describes the encryption."""
    try:
        manifest = archive.read("META-INF/manifest.xml")
    except KeyError:
        return False
    return b"encryption-data" in manifest


# --- text runs --------------------------------------------------------------------


def _odf_text(element: Element) -> str:
    """An element's text with ODF's spaces, tabs and line breaks; comments marked."""
    parts: list[str] = []
    _append_odf_text(element, parts)
    return "".join(parts)


def _append_odf_text(element: Element, parts: list[str]) -> None:
    if element.text:
        parts.append(element.text)
    for child in element:
        tag = child.tag
        if tag == f"{_TEXT}s":
            parts.append(" " * int(child.get(f"{_TEXT}c", "1")))
        elif tag == f"{_TEXT}tab":
            parts.append("\t")
        elif tag == f"{_TEXT}line-break":
            parts.append("\n")
        elif tag == f"{_OFFICE}annotation":
            parts.append(f" [Comment: {_annotation_text(child)}] ")
        elif tag == f"{_OFFICE}annotation-end":
            pass
        else:
            _append_odf_text(child, parts)
        if child.tail:
            parts.append(child.tail)


def _annotation_text(annotation: Element) -> str:
    paragraphs = [_odf_text(p).strip() for p in annotation.iter(f"{_TEXT}p")]
    return " ".join(p for p in paragraphs if p)


# --- ODT --------------------------------------------------------------------------


def _parse_odt(data: bytes, budget: _TextBudget) -> list[Segment]:
    body = _odf_body(data, "ODT (OpenDocument text)", ".sxw", "text")
    sections = HeadingPath()
    for kind, level, text in _odt_blocks(body):
        text = budget.take(text)
        if kind == "heading":
            sections.start(level, text)
        sections.add(text)
    return sections.segments()


def _odt_blocks(container: Element, depth: int = -1) -> Iterator[tuple[str, int, str]]:
    """(kind, heading level, text) for each block in reading order. A list item's first
    paragraph is marked `- `, as in Markdown, indented two spaces per nesting `depth`."""
    marker = "- " if container.tag == f"{_TEXT}list-item" else None
    for child in container:
        tag = child.tag
        if tag == f"{_TEXT}h":
            yield "heading", int(child.get(f"{_TEXT}outline-level", "1")), _odf_text(child)
        elif tag == f"{_TEXT}p":
            text = _odf_text(child)
            if marker is not None and text.strip():
                text, marker = f"{'  ' * depth}{marker}{text}", "  "  # later ones: indented
            yield "paragraph", 0, text
        elif tag == f"{_TABLE}table":
            yield "table", 0, markdown_table(_odf_table_rows(child))
        elif tag == f"{_TEXT}list":
            yield from _odt_blocks(child, depth + 1)
        elif tag in _ODT_CONTAINERS:
            yield from _odt_blocks(child, depth)


# --- tables (ODT tables and ODS sheets) -------------------------------------------


def _odf_table_rows(table: Element) -> list[list[str]]:
    rows: list[list[str]] = []
    for row in _odf_rows(table):
        cells = _odf_row_cells(row)
        if any(cells):
            repeat = min(int(row.get(f"{_TABLE}number-rows-repeated", "1")), _MAX_REPEAT)
            rows.extend([cells] * repeat)
    return rows


def _odf_rows(container: Element) -> Iterator[Element]:
    for child in container:
        if child.tag == f"{_TABLE}table-row":
            yield child
        elif child.tag in (
            f"{_TABLE}table-rows",
            f"{_TABLE}table-header-rows",
            f"{_TABLE}table-row-group",
        ):
            yield from _odf_rows(child)


def _odf_row_cells(row: Element) -> list[str]:
    cells: list[str] = []
    for cell in row:
        if cell.tag not in (f"{_TABLE}table-cell", f"{_TABLE}covered-table-cell"):
            continue
        paragraphs = [_odf_text(p).strip() for p in cell if p.tag in (f"{_TEXT}p", f"{_TEXT}h")]
        text = " ".join(p for p in paragraphs if p)
        repeat = int(cell.get(f"{_TABLE}number-columns-repeated", "1"))
        # Empty runs are expanded too, or the cells after them would shift columns;
        # the trailing run (often 16,000+ columns) is trimmed below.
        cells.extend([text] * min(repeat, _MAX_REPEAT if text else _MAX_EMPTY_REPEAT))
    while cells and not cells[-1]:
        cells.pop()
    return cells


# --- ODS --------------------------------------------------------------------------


def _parse_ods(data: bytes, budget: _TextBudget) -> list[Segment]:
    body = _odf_body(data, "ODS (OpenDocument spreadsheet)", ".sxc", "spreadsheet")
    segments = []
    for table in body.iter(f"{_TABLE}table"):
        text = markdown_table(_odf_table_rows(table))
        if text:
            name = table.get(f"{_TABLE}name") or None
            segments.append(Segment(text=budget.take(text), heading=name))
    return segments


# --- ODP --------------------------------------------------------------------------


def _parse_odp(data: bytes, budget: _TextBudget) -> list[Segment]:
    body = _odf_body(data, "ODP (OpenDocument presentation)", ".sxi", "presentation")
    pages = body.findall(f"{_DRAW}page")
    budget.check_pages(len(pages), "slides")
    segments = []
    for number, page in enumerate(pages, start=1):
        lines = list(_odp_page_lines(page))
        notes = page.find(f"{_PRESENTATION}notes")
        if notes is not None:
            note_text = "\n".join(_odp_page_lines(notes)).strip()
            if note_text:
                lines.append(f"Notes: {note_text}")
        heading = _odp_title(page) or page.get(f"{_DRAW}name") or None
        segments.append(Segment(text=budget.take("\n".join(lines)), page=number, heading=heading))
    return segments


def _odp_page_lines(page: Element) -> Iterator[str]:
    for frame in page:
        if frame.tag == f"{_PRESENTATION}notes":
            continue
        for table in frame.iter(f"{_TABLE}table"):
            yield markdown_table(_odf_table_rows(table))
        for box in frame.iter(f"{_DRAW}text-box"):
            for block in box:
                if block.tag in (f"{_TEXT}p", f"{_TEXT}h"):
                    yield _odf_text(block)
                elif block.tag == f"{_TEXT}list":
                    yield from (text for _, _, text in _odt_blocks(block))


def _odp_title(page: Element) -> str | None:
    for frame in page.findall(f"{_DRAW}frame"):
        if frame.get(f"{_PRESENTATION}class") == "title":
            return " ".join(_odf_text(frame).split()) or None
    return None
