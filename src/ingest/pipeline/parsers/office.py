"""Office Open XML: DOCX (sections under headings), PPTX (slides), XLSX (sheets)."""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

import docx
import openpyxl
import pptx
from pptx.shapes.picture import Picture

from ingest.errors import CorruptDocument, DocumentRejected, EmptyDocument
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.charts import chart_text
from ingest.pipeline.parsers.docx_body import DocxBody, docx_picture_ids
from ingest.pipeline.parsers.pictures import PICTURE_PREFIX, PictureReader
from ingest.pipeline.parsers.pptx_comments import pptx_comment_lines
from ingest.pipeline.parsers.strict_ooxml import as_transitional
from ingest.pipeline.parsers.tables import markdown_table
from ingest.pipeline.parsers.text import HeadingPath
from ingest.pipeline.parsers.xlsx_comments import xlsx_cell_comments
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


def _parse_docx(data: bytes, budget: _TextBudget) -> list[Segment]:
    _check_office_container(data, "DOCX (Word)", ".doc")
    document = docx.Document(io.BytesIO(as_transitional(data)))
    picture_ids = docx_picture_ids(document)
    pictures = PictureReader(budget, count=len(picture_ids))
    blocks = list(DocxBody(document).blocks())
    read_pictures = pictures.wanted("".join(text for _, text in blocks), len(picture_ids))
    if read_pictures:  # again, reading pictures (headers' first, footers' last)
        body = DocxBody(document, pictures.read)
        blocks = [
            *body.margin_blocks("header"),
            *body.blocks(),
            *body.margin_blocks("footer"),
        ]
        pictures.finish()
    sections = HeadingPath()
    for level, text in blocks:
        text = budget.take(text)
        if level is not None:
            sections.start(level, text)
        # A block holding a picture's text (PictureReader.read's `[Picture: ...]`).
        sections.add(text, ocr=read_pictures and PICTURE_PREFIX in text)
    segments = sections.segments()
    _check_pictures_only(segments, len(picture_ids), pictures, "DOCX (Word)")
    return segments


def _check_pictures_only(
    segments: list[Segment], pictures: int, reader: PictureReader, kind: str
) -> None:
    """A document whose only content is pictures that OCR could not read: say why."""
    if not pictures or any(segment.text.strip() for segment in segments):
        return
    why = reader.unavailable or f"OCR found no text in {'them' if pictures > 1 else 'it'}"
    raise EmptyDocument(
        f"no text could be extracted from this {kind} file: its only content is "
        f"{pictures} picture{'s' if pictures > 1 else ''}, and {why}"
    )


# --- PPTX ---------------------------------------------------------------------


def _parse_pptx(data: bytes, budget: _TextBudget) -> list[Segment]:
    _check_office_container(data, "PPTX (PowerPoint)", ".ppt")
    presentation = pptx.Presentation(io.BytesIO(as_transitional(data)))
    budget.check_pages(len(presentation.slides), "slides")
    pictures = PictureReader(budget)
    segments = []
    picture_count = 0
    for number, slide in enumerate(presentation.slides, start=1):
        lines = list(_pptx_shape_lines(slide.shapes))
        blobs = list(_pptx_picture_blobs(slide.shapes))
        picture_count += len(blobs)
        picture_lines = []
        if pictures.wanted("".join(lines), len(blobs)):
            budget.ocr_progress(number - 1, len(presentation.slides), "slide")
            picture_lines = [text for text in map(pictures.read, blobs) if text]
            lines.extend(picture_lines)
        lines.extend(pptx_comment_lines(slide))
        lines.extend(_pptx_notes_lines(slide))
        text = budget.take("\n".join(line for line in lines if line))
        title = _pptx_title(slide)
        segments.append(Segment(text=text, page=number, heading=title, ocr=bool(picture_lines)))
    budget.ocr_finished(len(presentation.slides), "slide")
    _check_pictures_only(segments, picture_count, pictures, "PPTX (PowerPoint)")
    return segments


def _pptx_picture_blobs(shapes: Iterable[Any]) -> Iterator[bytes]:
    """The embedded image of every picture on the slide, groups included; linked
    (external) pictures have none."""
    for shape in shapes:
        if hasattr(shape, "shapes"):
            yield from _pptx_picture_blobs(shape.shapes)
        elif isinstance(shape, Picture):
            try:
                yield bytes(shape.image.blob)
            except (KeyError, ValueError, AttributeError):
                continue  # a linked picture, or one whose image part is missing


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
            yield markdown_table(
                [[str(cell.text) for cell in row.cells] for row in shape.table.rows]
            )
        elif getattr(shape, "has_chart", False) and shape.has_chart:
            chart = chart_text(shape.chart_part.blob)
            if chart:
                yield f"[Chart: {chart}]"


def _pptx_notes_lines(slide: Any) -> Iterator[str]:
    if not slide.has_notes_slide:
        return
    frame = slide.notes_slide.notes_text_frame
    if frame is not None and str(frame.text).strip():
        yield f"Notes: {frame.text}"


# --- XLSX ---------------------------------------------------------------------


def _parse_xlsx(data: bytes, budget: _TextBudget) -> list[Segment]:
    _check_office_container(data, "XLSX (Excel)", ".xls")
    package = as_transitional(data)
    comments = xlsx_cell_comments(package)
    with warnings.catch_warnings():
        # openpyxl warns (UserWarning) about features it drops while reading, e.g.
        # "Workbook contains no default style" or "Data Validation extension is not
        # supported": harmless for text extraction, fatal under `-W error`.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl(\.|$)")
        workbook = openpyxl.load_workbook(io.BytesIO(package), read_only=True, data_only=True)
        try:
            segments = []
            for sheet in workbook.worksheets:
                notes = comments.get(str(sheet.title), [])
                segment = _xlsx_sheet_segment(sheet, notes, budget)
                if segment is not None:
                    segments.append(segment)
            return segments
        finally:
            workbook.close()


def _xlsx_sheet_segment(sheet: Any, notes: list[str], budget: _TextBudget) -> Segment | None:
    """The sheet as a Markdown table, headed by its name; cell comments follow, marked."""
    rows = [[_xlsx_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    for row in rows:
        budget.take(" ".join(row))
    lines = [markdown_table(rows), *notes]
    text = "\n".join(line for line in lines if line)
    if not text:
        return None
    return Segment(text=text, heading=str(sheet.title))


def _xlsx_cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores every number as a float: "3", not "3.0"
    if hasattr(value, "isoformat"):
        text = str(value.isoformat())
        return text.removesuffix("T00:00:00")  # plain dates come back as midnight datetimes
    return str(value).strip()
