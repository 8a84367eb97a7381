"""Turn the bytes of an uploaded file into Segments of text.

One parser per format, chosen by the file extension; one module per format family
(text, HTML, PDF, Office, tabular, e-mail), the text decoding they share in
`decoding`. Every parser keeps the structure that matters for citing a passage
later (PDF pages, slides, sections under headings, sheets) and drops what only
adds noise (web-page navigation, Word headers and footers, e-mail attachments).

Whatever goes wrong surfaces as an IngestError subclass with a message about
the user's file: a raw library exception never escapes `parse_document`.
"""

from __future__ import annotations

import importlib
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ingest.errors import CorruptDocument, EmptyDocument, IngestError, UnsupportedFormat
from ingest.pipeline.filenames import ARCHIVE_EXTENSIONS, SOURCE_LANGUAGES, extension_of
from ingest.pipeline.parse_progress import ParseProgressCallback
from ingest.pipeline.parser_version import PARSER_VERSION
from ingest.pipeline.parsers.budget import ProgressFailed, _TextBudget, _too_much_text
from ingest.pipeline.parsers.code import source_parser
from ingest.pipeline.segments import ParseLimits, Segment

__all__ = [
    "ARCHIVE_EXTENSIONS",
    "PARSER_VERSION",
    "SUPPORTED_EXTENSIONS",
    "extension_of",
    "parse_document",
]

_MAX_REASON_CHARS = 200


# --- public entry point -------------------------------------------------------


def parse_document(
    data: bytes,
    filename: str,
    limits: ParseLimits,
    on_progress: ParseProgressCallback | None = None,
) -> list[Segment]:
    """Extract the text of `data` (the content of `filename`) as Segments;
    `on_progress` hears which page (image, picture, slide) OCR reads.

    Raises UnsupportedFormat, EmptyDocument, CorruptDocument or DocumentRejected;
    nothing else.
    """
    ext = extension_of(filename)
    fmt = _FORMATS.get(ext)
    if fmt is None and ext not in ARCHIVE_EXTENSIONS:
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise UnsupportedFormat(
            f"unsupported file type '{ext or 'no extension'}'; supported: {supported}"
        )
    if not data:
        raise EmptyDocument("the file is empty (0 bytes)")
    if fmt is None:
        # An archive has no text of its own: its members are child documents
        # (pipeline/containers.py), expanded by the ingestion.
        return []

    budget = _TextBudget(
        limits.max_text_chars,
        limits.max_pages,
        limits.ocr,
        max_ocr_pages=limits.max_ocr_pages,
        on_ocr=on_progress,
    )
    parse = fmt.resolve()
    try:
        raw_segments = parse(data, budget)
    except IngestError:
        raise
    except ProgressFailed as failed:
        raise failed.original from None
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


ParseFn = Callable[[bytes, _TextBudget], list[Segment]]


@dataclass(frozen=True, slots=True)
class _Format:
    label: str  # "no text could be extracted from this <label> file"
    corrupt_prefix: str  # "<corrupt_prefix>: <library message>"
    # The parser, or "module:function" under ingest.pipeline.parsers, imported at the
    # first file of that format: a process that parses only text never loads the
    # PDF, Office, e-book or e-mail libraries (isolation.py parses plain text inline).
    parser: ParseFn | str
    empty_hint: str = ""

    def resolve(self) -> ParseFn:
        """The parser function (imported outside parse_document's error handling: a
        missing library is not a corrupt file)."""
        if isinstance(self.parser, str):
            module, _, name = self.parser.partition(":")
            parser: ParseFn = getattr(importlib.import_module(f"{__name__}.{module}"), name)
            return parser
        return self.parser


def _check_total(segments: list[Segment], max_chars: int) -> None:
    if sum(len(segment.text) for segment in segments) > max_chars:
        raise _too_much_text(max_chars)


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
        cleaned.append(
            Segment(text=text, page=segment.page, heading=heading or None, ocr=segment.ocr)
        )
    return cleaned


# --- registry -----------------------------------------------------------------

_FORMATS: dict[str, _Format] = {
    ".txt": _Format("text", "not a valid text file", "text:_parse_txt"),
    ".md": _Format("Markdown", "not a valid Markdown file", "text:_parse_markdown"),
    ".markdown": _Format("Markdown", "not a valid Markdown file", "text:_parse_markdown"),
    ".mdx": _Format("MDX (Markdown)", "not a valid MDX file", "text:_parse_markdown"),
    ".rst": _Format("reStructuredText", "not a valid reStructuredText file", "markup:_parse_rst"),
    ".xml": _Format("XML", "not a valid XML file", "markup:_parse_xml"),
    ".rtf": _Format("RTF", "not a valid RTF file", "markup:_parse_rtf"),
    ".html": _Format("HTML", "not a valid HTML file", "html:_parse_html"),
    ".htm": _Format("HTML", "not a valid HTML file", "html:_parse_html"),
    ".pdf": _Format("PDF", "not a valid PDF", "pdf:_parse_pdf"),
    ".docx": _Format("DOCX (Word)", "not a valid DOCX (Word) file", "office:_parse_docx"),
    ".pptx": _Format(
        "PPTX (PowerPoint)", "not a valid PPTX (PowerPoint) file", "office:_parse_pptx"
    ),
    ".xlsx": _Format("XLSX (Excel)", "not a valid XLSX (Excel) file", "office:_parse_xlsx"),
    ".odt": _Format("ODT (OpenDocument text)", "not a valid ODT file", "opendoc:_parse_odt"),
    ".ods": _Format("ODS (OpenDocument spreadsheet)", "not a valid ODS file", "opendoc:_parse_ods"),
    ".odp": _Format(
        "ODP (OpenDocument presentation)", "not a valid ODP file", "opendoc:_parse_odp"
    ),
    ".epub": _Format("EPUB", "not a valid EPUB file", "ebook:_parse_epub"),
    ".csv": _Format("CSV", "not a valid CSV file", "tabular:_parse_csv"),
    ".tsv": _Format("TSV", "not a valid TSV file", "tabular:_parse_csv"),
    ".json": _Format("JSON", "not valid JSON", "tabular:_parse_json"),
    ".eml": _Format("e-mail", "not a valid e-mail message", "email:_parse_eml"),
    ".msg": _Format("Outlook message", "not a valid Outlook message (.msg)", "outlook:_parse_msg"),
}
_FORMATS.update(
    (ext, _Format("image", f"not a valid {ext[1:].upper()} image", "ocr:parse_image"))
    for ext in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
)
_FORMATS.update(
    (ext, _Format(f"{language} source", f"not a valid {language} source file", source_parser(ext)))
    for ext, language in SOURCE_LANGUAGES.items()
)

# Archives: no parser of their own, their members are child documents.
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_FORMATS) | ARCHIVE_EXTENSIONS
