"""Turn the bytes of an uploaded file into Segments of text.

One parser per format, chosen by the file extension. Every parser keeps the
structure that matters for citing a passage later (PDF pages, slides, sections
under headings, sheets) and drops what only adds noise (web-page navigation,
Word headers and footers, e-mail attachments).

Whatever goes wrong surfaces as an IngestError subclass with a message about
the user's file: a raw library exception never escapes `parse_document`.
"""

from __future__ import annotations

import codecs
import csv
import email
import email.policy
import io
import json
import re
import threading
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import charset_normalizer
import docx
import openpyxl
import pptx
import pypdfium2
import pypdfium2.raw as pdfium_raw
import trafilatura
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from ingest.errors import (
    CorruptDocument,
    DocumentRejected,
    EmptyDocument,
    IngestError,
    UnsupportedFormat,
)
from ingest.pipeline.segments import ParseLimits, Segment

# Bump whenever the text or the segmentation produced for the same file changes:
# it is part of the pipeline fingerprint, so stored documents get re-parsed.
PARSER_VERSION = "1"

# Office files are zip archives; refuse ones that would inflate past this, so a
# small "zip bomb" cannot exhaust memory inside python-docx/pptx/openpyxl.
_MAX_UNZIPPED_BYTES = 1024 * 1024 * 1024

_BINARY_SNIFF_BYTES = 8192
_CSV_SNIFF_CHARS = 16384
_MAX_REASON_CHARS = 200


# --- public entry point -------------------------------------------------------


def parse_document(data: bytes, filename: str, limits: ParseLimits) -> list[Segment]:
    """Extract the text of `data` (the content of `filename`) as Segments.

    Raises UnsupportedFormat, EmptyDocument, CorruptDocument or DocumentRejected;
    nothing else.
    """
    ext = _extension(filename)
    fmt = _FORMATS.get(ext)
    if fmt is None:
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise UnsupportedFormat(
            f"unsupported file type '{ext or 'no extension'}'; supported: {supported}"
        )
    if not data:
        raise EmptyDocument("the file is empty (0 bytes)")

    budget = _TextBudget(limits.max_text_chars)
    try:
        raw_segments = fmt.parse(data, budget)
    except IngestError:
        raise
    except Exception as exc:  # any library failure means the bytes are not that format
        raise CorruptDocument(f"{fmt.corrupt_prefix}: {_describe(exc)}") from exc

    segments = _clean_segments(raw_segments)
    if not segments:
        raise EmptyDocument(
            f"no text could be extracted from this {fmt.label} file{fmt.empty_hint}"
        )
    _check_total(segments, limits.max_text_chars)
    return segments


# --- shared plumbing ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Format:
    label: str  # "no text could be extracted from this <label> file"
    corrupt_prefix: str  # "<corrupt_prefix>: <library message>"
    parse: Callable[[bytes, _TextBudget], list[Segment]]
    empty_hint: str = ""


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


def _check_total(segments: list[Segment], max_chars: int) -> None:
    if sum(len(segment.text) for segment in segments) > max_chars:
        raise _too_much_text(max_chars)


def _extension(filename: str) -> str:
    # Not PurePath.suffix: it treats ".txt" as a hidden file without extension.
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[1].lower() if "." in name else ""


def _describe(exc: Exception) -> str:
    """A short, human version of a library exception."""
    if isinstance(exc, zipfile.BadZipFile):
        return "file is not a zip archive"
    if isinstance(exc, RecursionError):
        return "structure is nested too deeply"
    message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    message = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    if len(message) > _MAX_REASON_CHARS:
        message = message[: _MAX_REASON_CHARS - 3] + "..."
    return message


# C0 controls other than tab/newline, DEL, lone surrogates (from undecodable bytes)
# and the non-characters U+FFFE/U+FFFF: they break storage (surrogates cannot be
# encoded as UTF-8) and tokenizers, and never carry meaning in extracted text.
_JUNK_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
# Line breaks in disguise: vertical tab (a pptx/docx soft line break), form feed
# (a page break in text files), lone CR, Unicode line/paragraph separators.
_BREAK_CHARS = re.compile("[\x0b\x0c\r\u2028\u2029]")


def _clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n")
    text = _BREAK_CHARS.sub("\n", text)
    return _JUNK_CHARS.sub("", text)


def _clean_segments(segments: Iterable[Segment]) -> list[Segment]:
    cleaned: list[Segment] = []
    for segment in segments:
        text = _clean_text(segment.text).strip()
        if not text:
            continue
        # A heading is a label: one line (slide titles often hold line breaks).
        heading = " ".join(_clean_text(segment.heading).split()) if segment.heading else ""
        cleaned.append(Segment(text=text, page=segment.page, heading=heading or None))
    return cleaned


# --- text decoding ------------------------------------------------------------

# UTF-32 first: its little-endian BOM starts with the UTF-16 one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode_text(data: bytes, where: str, declared: str | None = None) -> str:
    """Decode bytes that should be text; `where` names the source in error messages.

    Order: byte-order mark; strict UTF-8 (valid UTF-8 is almost never an accident,
    while declared labels often are: mail says "us-ascii" over UTF-8 bytes); the
    charset the container declares (HTML meta, MIME); charset_normalizer's guess.
    NUL bytes without a BOM mean binary content, unless the bytes are UTF-16.
    """
    text = _decode_by_bom(data)
    if text is None and b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        text = _decode_wide(data, declared)
        if text is None:
            raise CorruptDocument(f"binary content in {where}: it contains NUL bytes")
    if text is None:
        text = _decode_utf8(data)
    if text is None and declared:
        text = _decode_declared(data, declared)
    if text is None:
        text = _decode_guessing(data, where)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode_utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _decode_by_bom(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue  # e.g. "FF FE 00 00" was UTF-16 text starting with U+0000
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            # The BOM is strong evidence: keep the text, mark the few bad bytes.
            return data.decode(encoding, errors="replace")
    return None


def _decode_wide(data: bytes, declared: str | None) -> str | None:
    """Text with NUL bytes but no BOM: UTF-16/32 as declared, or UTF-16 recognised by its NULs."""
    if declared and re.fullmatch(r"utf-?(16|32)(-?[bl]e)?", declared.strip().lower()):
        text = _decode_declared(data, declared)
        if text is not None and "\x00" not in text:
            return text
    return _decode_bomless_utf16(data)


def _decode_bomless_utf16(data: bytes) -> str | None:
    """Recognise UTF-16 without a BOM (Windows tools write it) by where its NULs sit."""
    sample = data[: _BINARY_SNIFF_BYTES - _BINARY_SNIFF_BYTES % 2]
    half = max(len(sample) // 2, 1)
    even_nuls, odd_nuls = sample[0::2].count(0), sample[1::2].count(0)
    if odd_nuls > 0.3 * half and even_nuls < 0.05 * half:
        encoding = "utf-16-le"
    elif even_nuls > 0.3 * half and odd_nuls < 0.05 * half:
        encoding = "utf-16-be"
    else:
        return None
    try:
        text = data[: len(data) - len(data) % 2].decode(encoding)
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def _decode_declared(data: bytes, declared: str) -> str | None:
    encoding = declared.strip().lower()
    # WHATWG: pages labelled Latin-1/ASCII are really Windows-1252.
    if encoding in {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "us-ascii", "ascii"}:
        encoding = "cp1252"
    try:
        return data.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        return None  # wrong or unknown label: fall back to detection


def _decode_guessing(data: bytes, where: str) -> str:
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise CorruptDocument(f"binary content in {where}: its bytes match no text encoding")
    return str(best)


# --- plain text and Markdown --------------------------------------------------


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


# --- HTML ---------------------------------------------------------------------

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


# --- PDF ----------------------------------------------------------------------

# PDFium is not thread-safe, not even across different documents: serialise it.
_PDFIUM_LOCK = threading.Lock()


def _parse_pdf(data: bytes, budget: _TextBudget) -> list[Segment]:
    with _PDFIUM_LOCK:
        pdf = _open_pdf(data)
        try:
            segments = []
            for index in range(len(pdf)):
                text = budget.take(_pdf_page_text(pdf, index))
                segments.append(Segment(text=text, page=index + 1))
            return segments
        finally:
            pdf.close()


def _open_pdf(data: bytes) -> Any:
    try:
        return pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_raw.FPDF_ERR_PASSWORD:
            raise CorruptDocument("PDF is password-protected") from exc
        raise


def _pdf_page_text(pdf: Any, index: int) -> str:
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            return str(textpage.get_text_range())
        finally:
            textpage.close()
    finally:
        page.close()


# --- Office Open XML (docx, pptx, xlsx) -----------------------------------------

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


# --- CSV ----------------------------------------------------------------------


def _parse_csv(data: bytes, budget: _TextBudget) -> list[Segment]:
    text = _decode_text(data, "a text file (.csv)")
    dialect, has_header = _sniff_csv(text)
    _allow_csv_fields_up_to(budget.max_chars)
    rows = csv.reader(io.StringIO(text, newline=""), dialect)
    header: list[str] | None = None
    lines: list[str] = []
    for row in rows:
        if has_header and header is None:
            header = [name.strip() for name in row]
            continue
        line = _csv_row_line(row, header)
        if line:
            lines.append(budget.take(line))
    if not lines and header:
        lines.append(" | ".join(name for name in header if name))
    return [Segment(text="\n".join(lines))]


def _sniff_csv(text: str) -> tuple[type[csv.Dialect] | csv.Dialect, bool]:
    # A bounded sample, cut at a line end: Sniffer's regexes get slow on big inputs.
    sample = text[:_CSV_SNIFF_CHARS]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    sniffer = csv.Sniffer()
    try:
        dialect: type[csv.Dialect] | csv.Dialect = sniffer.sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel  # one column, or too irregular to tell
    try:
        has_header = sniffer.has_header(sample)
    except csv.Error:
        has_header = False
    return dialect, has_header


def _allow_csv_fields_up_to(max_chars: int) -> None:
    """Raise the csv module's field-size cap (131072 by default) to our own text limit.

    The cap is process-wide; it is only ever raised, and our text limit still bounds
    every document.
    """
    wanted = min(max_chars, 2**31 - 1)
    if csv.field_size_limit() < wanted:
        csv.field_size_limit(wanted)


def _csv_row_line(row: list[str], header: list[str] | None) -> str:
    values = [value.strip() for value in row]
    if header is None:
        return " | ".join(value for value in values if value)
    pairs = []
    for index, value in enumerate(values):
        if value:
            name = header[index] if index < len(header) and header[index] else f"column {index + 1}"
            pairs.append(f"{name}: {value}")
    return "; ".join(pairs)


# --- JSON ---------------------------------------------------------------------


def _parse_json(data: bytes, budget: _TextBudget) -> list[Segment]:
    text = _decode_text(data, "a text file (.json)")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptDocument(
            f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise CorruptDocument("not valid JSON: nested too deeply") from exc
    lines = [budget.take(line) for line in _flatten_json(value)]
    return [Segment(text="\n".join(lines))]


def _flatten_json(value: object) -> Iterator[str]:
    """Yield "path.to.key: value" lines in document order (iterative: no recursion limit)."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            children = [
                (f"{path}.{key}" if path else str(key), child) for key, child in node.items()
            ]
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(f"{path}[{i}]", child) for i, child in enumerate(node)]))
        else:
            scalar = node if isinstance(node, str) else json.dumps(node)
            yield f"{path}: {scalar}" if path else scalar


# --- E-mail -------------------------------------------------------------------

_EMAIL_HEADERS = ("Subject", "From", "To", "Date")
_MAX_EMAIL_NESTING = 3


def _parse_eml(data: bytes, budget: _TextBudget) -> list[Segment]:
    if not data.strip():
        return []  # whitespace only: reported as an empty document
    message = email.message_from_bytes(_as_8bit_message(data), policy=email.policy.default)
    subject = _email_header(message, "Subject")
    text = _email_text(message, depth=0)
    if not text.strip():
        raise CorruptDocument("not a valid e-mail message")
    return [Segment(text=budget.take(text), heading=subject or None)]


def _email_text(message: EmailMessage, depth: int) -> str:
    """The header block, a blank line, then the body."""
    headers = {name: _email_header(message, name) for name in _EMAIL_HEADERS}
    header_block = "\n".join(f"{name}: {value}" for name, value in headers.items() if value)
    body = _email_body(message)
    if not body.strip() and depth < _MAX_EMAIL_NESTING:
        body = "\n\n".join(_inline_messages_text(message, depth))
    return f"{header_block}\n\n{body}".strip()


def _inline_messages_text(message: EmailMessage, depth: int) -> Iterator[str]:
    """Messages carried inline (a multipart/digest) are the content; attached ones are not."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822" and not part.is_attachment():
            for inner in part.iter_parts():
                if isinstance(inner, EmailMessage):
                    yield _email_text(inner, depth + 1)


def _as_8bit_message(data: bytes) -> bytes:
    """The email parser reads ASCII-compatible bytes: re-encode a message saved as UTF-16/32."""
    if _decode_by_bom(data) is None and b"\x00" not in data[:_BINARY_SNIFF_BYTES]:
        return data
    return _decode_text(data, "an e-mail file (.eml)").encode("utf-8")


def _email_header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
        text = "" if value is None else str(value)
    except Exception:  # a header the policy cannot parse: fall back to its raw value
        text = next((str(v) for k, v in message.raw_items() if k.lower() == name.lower()), "")
    return " ".join(text.split())


def _email_body(message: EmailMessage) -> str:
    """The text/plain body, else the text/html one reduced to its text; never attachments."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload:
        return ""
    charset = part.get_content_charset()
    if part.get_content_subtype() == "html":
        html = _decode_html(payload, "the e-mail's HTML body", declared=charset)
        # Mail HTML is often too short for trafilatura's main-content heuristics:
        # fall back to all of its text.
        return _html_to_markdown(html) or str(trafilatura.html2txt(html))
    return _decode_text(payload, "the e-mail body", declared=charset)


# --- registry -----------------------------------------------------------------

_FORMATS: dict[str, _Format] = {
    ".txt": _Format("text", "not a valid text file", _parse_txt),
    ".md": _Format("Markdown", "not a valid Markdown file", _parse_markdown),
    ".markdown": _Format("Markdown", "not a valid Markdown file", _parse_markdown),
    ".html": _Format("HTML", "not a valid HTML file", _parse_html),
    ".htm": _Format("HTML", "not a valid HTML file", _parse_html),
    ".pdf": _Format(
        "PDF",
        "not a valid PDF",
        _parse_pdf,
        empty_hint=" (it may hold only scanned images; OCR is not supported)",
    ),
    ".docx": _Format("DOCX (Word)", "not a valid DOCX (Word) file", _parse_docx),
    ".pptx": _Format("PPTX (PowerPoint)", "not a valid PPTX (PowerPoint) file", _parse_pptx),
    ".xlsx": _Format("XLSX (Excel)", "not a valid XLSX (Excel) file", _parse_xlsx),
    ".csv": _Format("CSV", "not a valid CSV file", _parse_csv),
    ".json": _Format("JSON", "not valid JSON", _parse_json),
    ".eml": _Format("e-mail", "not a valid e-mail message", _parse_eml),
}

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_FORMATS)
