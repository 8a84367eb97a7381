"""Office Open XML: DOCX (sections under headings), PPTX (slides), XLSX (sheets)."""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

import docx
import openpyxl
import pptx
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from ingest.errors import CorruptDocument, DocumentRejected
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.text import _SectionCollector
from ingest.pipeline.segments import Segment

# Office files are zip archives; refuse ones that would inflate past this, so a
# small "zip bomb" cannot exhaust memory inside python-docx/pptx/openpyxl.
_MAX_UNZIPPED_BYTES = 1024 * 1024 * 1024

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _check_office_container(data: bytes, kind: str, legacy_ext: str) -> None:
    """Fail early, with a useful message, on what the Office libraries would misreport."""
    if data.startswith(_OLE_MAGIC):
        # Encrypted OOXML and the pre-2007 binary formats are both OLE compound files.
        raise CorruptDocument(
            f"not a valid {kind} file: it is password-protected or in the older {legacy_ext} format"
        )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    if unzipped > _MAX_UNZIPPED_BYTES:
        raise DocumentRejected(
            f"the {kind} file expands to {unzipped // (1024 * 1024)} MB when unzipped; "
            f"the limit is {_MAX_UNZIPPED_BYTES // (1024 * 1024)} MB"
        )


# --- DOCX ---------------------------------------------------------------------

_HEADING_STYLE = re.compile(r"(heading [1-9]|title)", re.I)
_TEXTBOX = qn("w:txbxContent")
_PARAGRAPH = qn("w:p")
_TABLE = qn("w:tbl")
# Word stores each text box twice: DrawingML (mc:Choice) and a VML copy (mc:Fallback).
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"


def _parse_docx(data: bytes, budget: _TextBudget) -> list[Segment]:
    _check_office_container(data, "DOCX (Word)", ".doc")
    document = docx.Document(io.BytesIO(data))
    sections = _SectionCollector()
    # Walk the body in order: `document.paragraphs` would skip every table.
    # Headers and footers are left out on purpose: they repeat boilerplate.
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            text = budget.take(_docx_paragraph_text(block))
            if _is_docx_heading(block):
                sections.start_section(text.strip() or None)
            sections.add(text)
        else:
            for line in _docx_table_lines(block):
                sections.add(budget.take(line))
    return sections.segments()


def _is_docx_heading(paragraph: Paragraph) -> bool:
    style = paragraph.style
    name = style.name if style is not None else None
    return bool(name and _HEADING_STYLE.fullmatch(name.strip()))


def _docx_paragraph_text(paragraph: Paragraph) -> str:
    """The paragraph's text plus that of any text box anchored in it (python-docx skips those)."""
    lines = [paragraph.text]
    for box in paragraph._p.iter(_TEXTBOX):
        if any(ancestor.tag == _MC_FALLBACK for ancestor in box.iterancestors()):
            continue
        for element in box.iter(_PARAGRAPH):
            lines.append(Paragraph(element, paragraph._parent).text)
    return "\n".join(line for line in lines if line.strip())


def _docx_table_lines(table: Table) -> Iterator[str]:
    """One line per row, cells joined by " | "; nested tables follow their row.

    Reads each row's <w:tc> elements rather than `row.cells`: that layout-grid view
    repeats merged cells and raises on rows whose grid offsets do not add up
    (tables Word itself opens fine).
    """
    for tr in table._tbl.tr_lst:
        cells: list[str] = []
        nested: list[Table] = []
        for tc in tr.tc_lst:
            texts = [Paragraph(p, table).text.strip() for p in tc.iterchildren(_PARAGRAPH)]
            text = " ".join(t for t in texts if t)
            if text:
                cells.append(text)
            nested.extend(Table(tbl, table) for tbl in tc.iterchildren(_TABLE))
        if cells:
            yield " | ".join(cells)
        for inner in nested:
            yield from _docx_table_lines(inner)


# --- PPTX ---------------------------------------------------------------------


def _parse_pptx(data: bytes, budget: _TextBudget) -> list[Segment]:
    _check_office_container(data, "PPTX (PowerPoint)", ".ppt")
    presentation = pptx.Presentation(io.BytesIO(data))
    budget.check_pages(len(presentation.slides), "slides")
    segments = []
    for number, slide in enumerate(presentation.slides, start=1):
        lines = list(_pptx_shape_lines(slide.shapes))
        lines.extend(_pptx_notes_lines(slide))
        text = budget.take("\n".join(lines))
        segments.append(Segment(text=text, page=number, heading=_pptx_title(slide)))
    return segments


def _pptx_title(slide: Any) -> str | None:
    title = slide.shapes.title
    if title is None or not title.has_text_frame:
        return None
    return str(title.text_frame.text).strip() or None


def _pptx_shape_lines(shapes: Iterable[Any]) -> Iterator[str]:
    for shape in shapes:
        if hasattr(shape, "shapes"):  # a group: its children are shapes too
            yield from _pptx_shape_lines(shape.shapes)
        elif shape.has_text_frame:
            yield str(shape.text_frame.text)
        elif getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                cells = [str(cell.text).strip() for cell in row.cells]
                if any(cells):
                    yield " | ".join(cell for cell in cells if cell)


def _pptx_notes_lines(slide: Any) -> Iterator[str]:
    if not slide.has_notes_slide:
        return
    frame = slide.notes_slide.notes_text_frame
    if frame is not None:
        yield str(frame.text)


# --- XLSX ---------------------------------------------------------------------


def _parse_xlsx(data: bytes, budget: _TextBudget) -> list[Segment]:
    _check_office_container(data, "XLSX (Excel)", ".xls")
    with warnings.catch_warnings():
        # openpyxl warns (UserWarning) about features it drops while reading, e.g.
        # "Workbook contains no default style" or "Data Validation extension is not
        # supported": harmless for text extraction, fatal under `-W error`.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl(\.|$)")
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            return [
                segment
                for sheet in workbook.worksheets
                if (segment := _xlsx_sheet_segment(sheet, budget)) is not None
            ]
        finally:
            workbook.close()


def _xlsx_sheet_segment(sheet: Any, budget: _TextBudget) -> Segment | None:
    lines = []
    for row in sheet.iter_rows(values_only=True):
        cells = [_xlsx_cell_text(value) for value in row]
        line = " | ".join(cell for cell in cells if cell)
        if line:
            lines.append(budget.take(line))
    if not lines:
        return None
    return Segment(text="\n".join(lines), heading=str(sheet.title))


def _xlsx_cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores every number as a float: "3", not "3.0"
    if hasattr(value, "isoformat"):
        text = str(value.isoformat())
        return text.removesuffix("T00:00:00")  # plain dates come back as midnight datetimes
    return str(value).strip()
