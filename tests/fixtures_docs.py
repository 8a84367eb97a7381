"""Generators for real documents of every supported format, written into a test's directory.

Each function writes one file and returns its Path. The files are built with the
same libraries a user's tools would use (fpdf2, python-docx, python-pptx,
openpyxl, the stdlib email package), so the parsers are tested on genuine
bytes rather than on mocks. Nothing here reads shared sample data.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape
from pathlib import Path

import docx
import openpyxl
import pptx
from fpdf import FPDF

COOKIE_TEXT = "We use cookies to personalise content. Accept all cookies or manage preferences."
HEADER_TEXT = "Acme Corporation corporate masthead"


def _target(directory: Path, name: str) -> Path:
    """Where to write `name`; the directory is created if it does not exist yet."""
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


def make_txt(directory: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    """Plain text; `encoding="utf-16"` writes a byte-order mark, "utf-16-le" does not."""
    path = _target(directory, name)
    path.write_bytes(text.encode(encoding))
    return path


def make_md(directory: Path, name: str, text: str) -> Path:
    path = _target(directory, name)
    path.write_text(text, encoding="utf-8")
    return path


def make_html(
    directory: Path,
    name: str,
    main_text: str,
    nav_text: str,
    footer_text: str,
    *,
    title: str = "Quarterly field report",
    cookie_text: str = COOKIE_TEXT,
    encoding: str = "utf-8",
    declare_charset: bool = True,
) -> Path:
    """A realistic page: header, nav, cookie banner, footer and a main <article>.

    The article has a heading and several substantial paragraphs (with `main_text`
    in the first) so that content extractors recognise it as the main content.
    With `declare_charset=False` the page is in `encoding` but does not say so.
    """
    charset = f'\n  <meta charset="{encoding}">' if declare_charset else ""
    filler = [
        "The survey team visited eleven sites along the northern ridge during the spring "
        "season and recorded soil moisture, vegetation cover and the condition of trails.",
        "Most sites showed a steady recovery after the wet winter, although two plots near "
        "the old quarry still had bare ground where erosion had removed the topsoil.",
        "The next visit is planned for the autumn, when the team will repeat the "
        "measurements and compare them with the records kept over the last decade.",
    ]
    paragraphs = "\n".join(f"      <p>{escape(p)}</p>" for p in [main_text, *filler])
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>{charset}
  <title>{escape(title)}</title>
</head>
<body>
  <header><div class="logo">{escape(HEADER_TEXT)}</div></header>
  <nav class="menu">
    <ul><li><a href="/">{escape(nav_text)}</a></li><li><a href="/about">About us</a></li></ul>
  </nav>
  <div id="cookie-banner" class="cookie-consent">
    <p>{escape(cookie_text)}</p><button>Accept</button>
  </div>
  <main>
    <article>
      <h1>{escape(title)}</h1>
{paragraphs}
    </article>
  </main>
  <footer><p>{escape(footer_text)}</p></footer>
</body>
</html>
"""
    path = _target(directory, name)
    path.write_bytes(page.encode(encoding))
    return path


def make_pdf(directory: Path, name: str, pages: list[str]) -> Path:
    """One PDF page per string; an empty string gives a blank page."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    path = _target(directory, name)
    pdf.output(str(path))
    return path


def make_encrypted_pdf(directory: Path, name: str, text: str, user_password: str) -> Path:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner-secret", user_password=user_password)
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, text)
    path = _target(directory, name)
    pdf.output(str(path))
    return path


def make_docx(
    directory: Path,
    name: str,
    paragraphs: list[str],
    table_rows: list[list[str]],
    *,
    heading: str = "Project overview",
) -> Path:
    """A Word file: a Heading 1, the paragraphs, then a table with `table_rows`."""
    document = docx.Document()
    document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    if table_rows:
        columns = max(len(row) for row in table_rows)
        table = document.add_table(rows=len(table_rows), cols=columns)
        for row, values in zip(table.rows, table_rows, strict=True):
            for cell, value in zip(row.cells, values, strict=False):
                cell.text = value
    path = _target(directory, name)
    document.save(str(path))
    return path


def make_pptx(
    directory: Path,
    name: str,
    slides: list[tuple[str, str]],
    *,
    notes: dict[int, str] | None = None,
) -> Path:
    """One "Title and Content" slide per (title, body); `notes` maps a 1-based slide to notes."""
    presentation = pptx.Presentation()
    layout = presentation.slide_layouts[1]
    for number, (title, body) in enumerate(slides, start=1):
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text_frame.text = body
        if notes and number in notes:
            slide.notes_slide.notes_text_frame.text = notes[number]
    path = _target(directory, name)
    presentation.save(str(path))
    return path


def make_xlsx(
    directory: Path,
    name: str,
    rows: list[list[object]],
    *,
    sheet_name: str = "Inventory",
    extra_sheets: dict[str, list[list[object]]] | None = None,
) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = sheet_name
    for row in rows:
        sheet.append(row)
    for title, sheet_rows in (extra_sheets or {}).items():
        extra = workbook.create_sheet(title)
        for row in sheet_rows:
            extra.append(row)
    path = _target(directory, name)
    workbook.save(str(path))
    return path


def make_csv(directory: Path, name: str, rows: list[list[str]], delimiter: str = ",") -> Path:
    path = _target(directory, name)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def make_json(directory: Path, name: str, value: object) -> Path:
    path = _target(directory, name)
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
    return path


def make_eml(
    directory: Path,
    name: str,
    subject: str,
    body: str,
    *,
    html_body: str | None = None,
    attachment: tuple[str, bytes] | None = None,
) -> Path:
    """An e-mail with a text/plain body, optionally an HTML alternative and an attachment."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Ada Lovelace <ada@example.org>"
    message["To"] = "Charles Babbage <charles@example.org>"
    message["Date"] = format_datetime(datetime(2024, 3, 5, 9, 30, tzinfo=UTC))
    message.set_content(body)
    if html_body is not None:
        message.add_alternative(html_body, subtype="html")
    if attachment is not None:
        filename, content = attachment
        message.add_attachment(
            content, maintype="application", subtype="octet-stream", filename=filename
        )
    path = _target(directory, name)
    path.write_bytes(message.as_bytes())
    return path


def make_corrupt_pdf(directory: Path, name: str) -> Path:
    """Starts like a PDF, then is garbage: no cross-reference table, no objects."""
    noise = random.Random(1234).randbytes(2048)
    path = _target(directory, name)
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + noise)
    return path


def make_binary_txt(directory: Path, name: str) -> Path:
    """Random bytes, NULs included, under a text file's name."""
    noise = bytearray(random.Random(5678).randbytes(4096))
    noise[10:20] = bytes(10)  # make sure NUL bytes sit early in the file
    path = _target(directory, name)
    path.write_bytes(bytes(noise))
    return path


def make_empty(directory: Path, name: str) -> Path:
    path = _target(directory, name)
    path.write_bytes(b"")
    return path


_VOCABULARY = [
    "the",
    "ledger",
    "archive",
    "vault",
    "river",
    "mountain",
    "signal",
    "harbor",
    "lantern",
    "meadow",
    "orchard",
    "copper",
    "engine",
    "window",
    "garden",
    "letter",
    "market",
    "winter",
    "summer",
    "autumn",
    "spring",
    "bridge",
    "valley",
    "forest",
    "station",
    "journey",
    "captain",
    "doctor",
    "teacher",
    "farmer",
    "pilot",
    "writer",
    "painter",
    "baker",
    "miller",
    "carries",
    "builds",
    "records",
    "measures",
    "follows",
    "crosses",
    "watches",
    "opens",
    "closes",
    "gathers",
    "keeps",
    "quiet",
    "bright",
    "early",
    "late",
    "heavy",
    "narrow",
    "distant",
    "ancient",
    "careful",
    "sudden",
    "gentle",
    "steady",
    "north",
    "south",
    "east",
    "west",
    "under",
    "over",
    "beyond",
    "beside",
    "through",
    "across",
    "along",
    "within",
    "report",
    "season",
    "survey",
    "budget",
    "contract",
    "invoice",
    "schedule",
    "meeting",
    "review",
    "policy",
]


def prose(words: int, seed: int) -> str:
    """Random sentences over a small vocabulary: distinct text, so every chunk is new.
    With the default chunker ~190 words make one chunk."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    count = 0
    while count < words:
        sentences = []
        for _ in range(5):
            n = rng.randint(8, 16)
            sentences.append(" ".join(rng.choice(_VOCABULARY) for _ in range(n)).capitalize() + ".")
            count += n
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)
