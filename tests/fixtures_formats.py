"""Generators for the formats beyond the Office/PDF/HTML core, written into a test's directory.

Like tests/fixtures_docs.py: real files, built with the libraries a user's tools
would use (odfpy writes OpenDocument files, python-docx the Word file we turn
into Strict Open XML) or, for the simple containers (EPUB, RTF), byte for byte
as the specifications lay them out.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import docx
from odf.draw import Frame, Page, TextBox
from odf.namespaces import PRESENTATIONNS
from odf.office import Annotation
from odf.opendocument import (
    OpenDocumentPresentation,
    OpenDocumentSpreadsheet,
    OpenDocumentText,
)
from odf.presentation import Notes
from odf.style import MasterPage, PageLayout
from odf.table import Table, TableCell, TableColumn, TableRow
from odf.text import H, List, ListItem, P


def _target(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


def make_odt(directory: Path, name: str) -> Path:
    """Chapter 2 > Pricing with a paragraph carrying a comment, and a 2x2 table."""
    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text="Chapter 2"))
    document.text.addElement(P(text="Prices are reviewed every spring."))
    document.text.addElement(H(outlinelevel=2, text="Pricing"))
    paragraph = P(text="The basic plan costs nine euros.")
    annotation = Annotation()
    annotation.addElement(P(text="Check this with finance"))
    paragraph.addElement(annotation)
    document.text.addElement(paragraph)
    table = Table(name="Plans")
    table.addElement(TableColumn(numbercolumnsrepeated=2))
    for cells in (("Plan", "Price"), ("Basic", "9 EUR")):
        row = TableRow()
        for value in cells:
            row.addElement(_holding(TableCell(), value))
        table.addElement(row)
    document.text.addElement(table)
    return _saved(document, directory, name)


def make_odt_with_lists(directory: Path, name: str) -> Path:
    """Under "Shopping": a list of two items, then an item holding a nested list whose one
    item has two paragraphs."""
    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text="Shopping"))
    document.text.addElement(P(text="Bring these:"))
    outer, inner = List(), List()
    for text in ("Apples", "Pears"):
        outer.addElement(_holding(ListItem(), text))
    inner.addElement(_holding(ListItem(), "Green ones", "if ripe"))
    holder = ListItem()
    holder.addElement(inner)
    outer.addElement(holder)
    document.text.addElement(outer)
    return _saved(document, directory, name)


def make_ods(directory: Path, name: str, sheets: dict[str, list[list[str]]]) -> Path:
    document = OpenDocumentSpreadsheet()
    for sheet_name, rows in sheets.items():
        table = Table(name=sheet_name)
        for values in rows:
            row = TableRow()
            for value, run in _runs(values):
                if value:
                    cell = _holding(TableCell(valuetype="string"), value)
                else:  # consecutive empty cells: one repeated cell, as LibreOffice writes them
                    cell = TableCell(numbercolumnsrepeated=run)
                row.addElement(cell)
            table.addElement(row)
        document.spreadsheet.addElement(table)
    return _saved(document, directory, name)


def _saved(document: Any, directory: Path, name: str) -> Path:
    path = _target(directory, name)
    document.save(str(path))
    return path


def _holding(element: Any, *paragraphs: str) -> Any:
    """`element` (a cell, a list item) with a paragraph per text."""
    for text in paragraphs:
        element.addElement(P(text=text))
    return element


def _runs(values: list[str]) -> list[tuple[str, int]]:
    """Each value with 1, except a run of empty strings: ("", its length)."""
    runs: list[tuple[str, int]] = []
    for value in values:
        if not value and runs and not runs[-1][0]:
            runs[-1] = ("", runs[-1][1] + 1)
        else:
            runs.append((value, 1))
    return runs


def make_odp(directory: Path, name: str, slides: list[tuple[str, str, str]]) -> Path:
    """One page per (title, body, speaker notes)."""
    document = OpenDocumentPresentation()
    layout = PageLayout(name="layout")
    document.automaticstyles.addElement(layout)
    master = MasterPage(name="master", pagelayoutname=layout)
    document.masterstyles.addElement(master)
    for number, (title, body, notes) in enumerate(slides, start=1):
        page = Page(name=f"page{number}", masterpagename=master)
        for text, cls in ((title, "title"), (body, "outline")):
            frame = _frame(cls)
            box = TextBox()
            box.addElement(P(text=text))
            frame.addElement(box)
            page.addElement(frame)
        notes_element = Notes()
        frame = _frame("notes")
        box = TextBox()
        box.addElement(P(text=notes))
        frame.addElement(box)
        notes_element.addElement(frame)
        page.addElement(notes_element)
        document.presentation.addElement(page)
    return _saved(document, directory, name)


def _frame(presentation_class: str) -> Frame:
    frame = Frame(width="20cm", height="3cm", x="1cm", y="1cm")
    frame.setAttrNS(PRESENTATIONNS, "class", presentation_class)
    return frame


_XHTML = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>{title}</title></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""


def make_epub(directory: Path, name: str, chapters: list[tuple[str, str]]) -> Path:
    """An EPUB 3 package; the spine lists the chapters in the reverse of their file order,
    so a reader that follows the spine is told apart from one that follows the zip."""
    items = "\n".join(
        f'<item id="c{i}" href="text/ch{i}.xhtml" media-type="application/xhtml+xml"/>'
        for i in range(len(chapters))
    )
    spine = "\n".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    opf = f"""<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Book</dc:title></metadata>
<manifest>{items}</manifest><spine>{spine}</spine></package>"""
    container = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf"
 media-type="application/oebps-package+xml"/></rootfiles></container>"""
    path = _target(directory, name)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", container)
        for i in reversed(range(len(chapters))):
            title, text = chapters[i]
            archive.writestr(f"OEBPS/text/ch{i}.xhtml", _XHTML.format(title=title, text=text))
        archive.writestr("OEBPS/content.opf", opf)
    return path


def make_strict_docx(directory: Path, name: str, heading: str, text: str) -> Path:
    """A Word file saved as "Strict Open XML": Transitional parts under the Strict URIs."""
    document = docx.Document()
    document.add_heading(heading, level=1)
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    path = _target(directory, name)
    path.write_bytes(_to_strict(buffer.getvalue()))
    return path


def to_strict(path: Path) -> Path:
    """Rewrite a generated Office file in place as Strict Open XML."""
    path.write_bytes(_to_strict(path.read_bytes()))
    return path


_TRANSITIONAL = re.compile(
    rb"http://schemas\.openxmlformats\.org/"
    rb"(wordprocessingml|spreadsheetml|presentationml|drawingml|officeDocument)/2006/"
)


def _to_strict(package: bytes) -> bytes:
    output = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(package)) as source,
        zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as strict,
    ):
        for info in source.infolist():
            content = source.read(info)
            if info.filename.endswith((".xml", ".rels")):
                content = content.replace(
                    b"officeDocument/2006/extended-properties",
                    b"officeDocument/extendedProperties",
                )
                content = _TRANSITIONAL.sub(rb"http://purl.oclc.org/ooxml/\1/", content)
            strict.writestr(info, content)
    return output.getvalue()


RTF_SAMPLE = (
    rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Times New Roman;}}"
    rb"\f0\fs24 The caf\'e9 opens at nine.\par"
    rb"{\b Bold} words stay words.\par}"
)


_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_M_NS = "http://schemas.openxmlformats.org/officeDocument/2006/math"
_CHART_TYPE = "application/vnd.openxmlformats-officedocument.drawingml.chart+xml"
_FOOTNOTES_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes"
_CHART_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/chart"


# A series "Sales" with points North 120 and South 80, as Word caches it in a chart part.
_CHART_SERIES = (
    b'<c:ser><c:idx val="0"/><c:tx><c:strRef><c:strCache><c:pt idx="0"><c:v>Sales</c:v>'
    b'</c:pt></c:strCache></c:strRef></c:tx><c:cat><c:strRef><c:strCache><c:pt idx="0">'
    b'<c:v>North</c:v></c:pt><c:pt idx="1"><c:v>South</c:v></c:pt></c:strCache></c:strRef>'
    b'</c:cat><c:val><c:numRef><c:numCache><c:pt idx="0"><c:v>120</c:v></c:pt>'
    b'<c:pt idx="1"><c:v>80</c:v></c:pt></c:numCache></c:numRef></c:val></c:ser>'
)


def make_docx_with_hidden_text(directory: Path, name: str) -> Path:
    """Text python-docx's own views miss: a block content control, an inline one,
    a comment, an equation, a chart's title and data labels and a footnote, each with its
    own words."""
    from docx.opc.packuri import PackURI
    from docx.opc.part import Part
    from docx.oxml import parse_xml

    document = docx.Document()
    body = document.element.body
    sectpr = body[-1]
    sectpr.addprevious(
        parse_xml(
            f'<w:sdt xmlns:w="{_W_NS}"><w:sdtPr><w:alias w:val="Client"/></w:sdtPr>'
            "<w:sdtContent><w:p><w:r><w:t>Client: Okapi Holdings</w:t></w:r></w:p>"
            "</w:sdtContent></w:sdt>"
        )
    )
    paragraph = document.add_paragraph("Signed on ")
    paragraph._p.append(
        parse_xml(
            f'<w:sdt xmlns:w="{_W_NS}"><w:sdtContent><w:r><w:t>12 March 2026</w:t></w:r>'
            "</w:sdtContent></w:sdt>"
        )
    )
    commented = document.add_paragraph().add_run("The fee is fixed.")
    document.add_comment(commented, text="Ask legal about indexation", author="Rev")
    equation = document.add_paragraph("Energy: ")
    equation._p.append(
        parse_xml(
            f'<m:oMath xmlns:m="{_M_NS}"><m:r><m:t>E=m</m:t></m:r><m:sSup><m:e><m:r>'
            "<m:t>c</m:t></m:r></m:e><m:sup><m:r><m:t>2</m:t></m:r></m:sup></m:sSup></m:oMath>"
        )
    )
    chart_xml = (
        b'<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" '
        b'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><c:chart><c:title>'
        b"<c:tx><c:rich><a:p><a:r><a:t>Sales by region</a:t></a:r></a:p></c:rich></c:tx>"
        b"</c:title><c:plotArea><c:barChart>" + _CHART_SERIES + b'<c:dLbls><c:showVal val="1"/>'
        b"</c:dLbls></c:barChart></c:plotArea></c:chart></c:chartSpace>"
    )
    part = document.part
    chart = Part(PackURI("/word/charts/chart1.xml"), _CHART_TYPE, chart_xml, part.package)
    rid = part.relate_to(chart, _CHART_REL)
    document.add_paragraph()._p.append(
        parse_xml(
            f'<w:r xmlns:w="{_W_NS}" '
            'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
            'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
            'xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<w:drawing><wp:inline><wp:extent cx="1" cy="1"/><wp:docPr id="1" name="Chart"/>'
            '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/chart">'
            f'<c:chart r:id="{rid}"/></a:graphicData></a:graphic></wp:inline></w:drawing></w:r>'
        )
    )
    footnotes = Part(
        PackURI("/word/footnotes.xml"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml",
        f'<w:footnotes xmlns:w="{_W_NS}"><w:footnote w:id="1"><w:p><w:r>'
        "<w:t>Source: the 2025 census</w:t></w:r></w:p></w:footnote></w:footnotes>".encode(),
        part.package,
    )
    part.relate_to(footnotes, _FOOTNOTES_REL)
    noted = document.add_paragraph("Population grew.")
    noted._p.append(parse_xml(f'<w:r xmlns:w="{_W_NS}"><w:footnoteReference w:id="1"/></w:r>'))
    return _saved(document, directory, name)


def make_docx_with_lists(directory: Path, name: str) -> Path:
    """Under "Shopping": a bulleted list by style, an item nested by its own numbering
    (level 1), a numbered one, and a "List Bullet" paragraph whose numbering is off."""
    from docx.oxml import parse_xml

    document = docx.Document()
    document.add_heading("Shopping", level=1)
    document.add_paragraph("Bring these:")
    document.add_paragraph("Apples", style="List Bullet")
    nested = document.add_paragraph("Green ones")
    nested._p.insert(
        0,
        parse_xml(
            f'<w:pPr xmlns:w="{_W_NS}"><w:numPr><w:ilvl w:val="1"/><w:numId w:val="1"/>'
            "</w:numPr></w:pPr>"
        ),
    )
    document.add_paragraph("Pears", style="List Number")
    plain = document.add_paragraph("Thanks!", style="List Bullet")
    plain._p.get_or_add_pPr().append(
        parse_xml(f'<w:numPr xmlns:w="{_W_NS}"><w:numId w:val="0"/></w:numPr>')
    )
    return _saved(document, directory, name)


def make_pptx_with_table_and_chart(directory: Path, name: str) -> Path:
    """One slide titled "Results" with a 2x2 table and a column chart titled "Sales by region"
    whose data labels show the values, but for South's, typed in as "Record low"."""
    import pptx
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])  # title only
    slide.shapes.title.text = "Results"
    table = slide.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for r, row in enumerate((("Region", "Sales"), ("North", "120"))):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    data = CategoryChartData()
    data.categories = ["North", "South"]
    data.add_series("Sales", (120, 80))
    chart = slide.shapes.add_chart(
        XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(4), Inches(4), Inches(3), data
    ).chart
    chart.has_title = True
    chart.chart_title.text_frame.text = "Sales by region"
    chart.plots[0].series[0].points[1].data_label.text_frame.text = "Record low"
    chart.plots[0].series[0].data_labels.show_value = True
    path = _target(directory, name)
    presentation.save(str(path))
    return path


_PPTX_COMMENTS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/comments"
_PPTX_MODERN_COMMENTS_REL = "http://schemas.microsoft.com/office/2018/10/relationships/comments"
_MODERN_TYPE = "application/vnd.ms-powerpoint.comments+xml"


def make_pptx_with_comments(directory: Path, name: str) -> Path:
    """Slide "Budget" with a classic comment (PowerPoint 2007-2019, `p:cmLst`); slide "Plan"
    with a modern one and its reply (PowerPoint 365, `p188:cmLst`)."""
    import pptx
    from pptx.opc.package import Part
    from pptx.opc.packuri import PackURI

    presentation = pptx.Presentation()
    classic = (
        '<p:cmLst xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main">'
        '<p:cm authorId="0" idx="1"><p:pos x="10" y="10"/><p:text>Check the Q3 figure</p:text>'
        "</p:cm></p:cmLst>"
    )
    modern = (
        '<p188:cmLst xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
        'xmlns:p188="http://schemas.microsoft.com/office/powerpoint/2018/8/main">'
        '<p188:cm id="{1}" authorId="{2}"><p188:replyLst><p188:reply id="{3}" authorId="{2}">'
        "<p188:txBody><a:bodyPr/><a:p><a:r><a:t>Dana does</a:t></a:r></a:p></p188:txBody>"
        "</p188:reply></p188:replyLst><p188:txBody><a:bodyPr/><a:p><a:r><a:t>Who owns</a:t>"
        "</a:r><a:r><a:t> this?</a:t></a:r></a:p></p188:txBody></p188:cm></p188:cmLst>"
    )
    classic_type = "application/vnd.openxmlformats-officedocument.presentationml.comments+xml"
    kinds = [
        ("Budget", classic, _PPTX_COMMENTS_REL, "comment1.xml", classic_type),
        ("Plan", modern, _PPTX_MODERN_COMMENTS_REL, "modernComment_1.xml", _MODERN_TYPE),
    ]
    for title, xml, reltype, part_name, content_type in kinds:
        slide = presentation.slides.add_slide(presentation.slide_layouts[5])  # title only
        slide.shapes.title.text = title
        part = Part(
            PackURI(f"/ppt/comments/{part_name}"), content_type, slide.part.package, xml.encode()
        )
        slide.part.relate_to(part, reltype)
    path = _target(directory, name)
    presentation.save(str(path))
    return path


def make_xlsx_with_comment(directory: Path, name: str) -> Path:
    import openpyxl
    from openpyxl.comments import Comment

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Prices"
    sheet.append(["Item", "Price"])
    sheet.append(["Tea", 3])
    sheet["B2"].comment = Comment("Raised in May", "Ann")
    path = _target(directory, name)
    workbook.save(str(path))
    return path


def _text_image(lines: list[str]) -> Any:
    """A white page with black text in a large default font, as a scanner would see it."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=40)
    image = Image.new("L", (1400, 120 + 70 * len(lines)), color=255)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((60, 60 + 70 * number), line, fill=0, font=font)
    return image


def make_text_png(directory: Path, name: str, lines: list[str]) -> Path:
    path = _target(directory, name)
    _text_image(lines).save(path, "PNG")
    return path


def make_text_image(directory: Path, name: str, pages: list[list[str]]) -> Path:
    """An image of text in the format its extension names (.jpg, .tiff, .webp: Pillow
    picks the encoder); a .tiff gets one frame per page, as a scanner's multi-page file."""
    path = _target(directory, name)
    first, *rest = [_text_image(lines) for lines in pages]
    if rest:
        first.save(path, save_all=True, append_images=rest)
    else:
        first.save(path)
    return path


def make_scanned_pdf(directory: Path, name: str, lines: list[str]) -> Path:
    """A one-page PDF that is only an image of text: no text layer (Pillow's PDF writer)."""
    path = _target(directory, name)
    _text_image(lines).save(path, "PDF", resolution=150)
    return path


def make_pdf_with_wrong_text_layer(
    directory: Path, name: str, lines: list[str], layer: str
) -> Path:
    """A page that shows an image of `lines` but whose (invisible) text layer says `layer`:
    what a badly OCRed scan looks like."""
    from fpdf import FPDF
    from fpdf.enums import TextMode

    pdf = FPDF()
    pdf.add_page()
    pdf.image(_text_image(lines), x=10, y=10, w=190)
    pdf.set_font("Helvetica", size=12)
    pdf.text_mode = TextMode.INVISIBLE
    pdf.text(20, 200, layer)
    path = _target(directory, name)
    pdf.output(str(path))
    return path


def make_stamped_scan(directory: Path, name: str, lines: list[str], stamp: str) -> Path:
    """An A4 page scanned whole (an image of `lines` over the full page) whose only text
    layer is a small stamp at its foot: a Bates number a copier printed on every page."""
    from fpdf import FPDF
    from PIL import Image

    page = Image.new("L", (1240, 1754), color=255)  # A4 at 150 dpi
    page.paste(_text_image(lines), (0, 100))
    pdf = FPDF()
    pdf.add_page()
    pdf.image(page, x=0, y=0, w=210, h=297)
    pdf.set_font("Helvetica", size=8)
    pdf.text(170, 290, stamp)
    path = _target(directory, name)
    pdf.output(str(path))
    return path


# Debian's fonts-dejavu-core: DejaVu Sans has the Arabic and Hebrew glyphs.
DEJAVU_SANS = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DEJAVU_INSTALL = "apt-get install -y fonts-dejavu-core   (as root; ./scripts/setup does it)"


def make_rtl_pdf(directory: Path, name: str, lines: list[str], *, shaped: bool) -> Path:
    """A page of right-to-left lines in DejaVu Sans. Shaped (HarfBuzz): joined Arabic
    glyphs and lam-alef ligatures, as Word and LibreOffice draw them; unshaped: one glyph
    per letter, drawn from the left, as simpler producers do."""
    from fpdf import FPDF

    if not DEJAVU_SANS.is_file():
        raise RuntimeError(f"{DEJAVU_SANS} is missing: {DEJAVU_INSTALL}")
    pdf = FPDF()
    pdf.add_page()
    pdf.add_font("DejaVu", fname=str(DEJAVU_SANS))
    pdf.set_font("DejaVu", size=14)
    if shaped:
        pdf.set_text_shaping(True)
    for line in lines:
        pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    path = _target(directory, name)
    pdf.output(str(path))
    return path


def _png_bytes(lines: list[str]) -> io.BytesIO:
    buffer = io.BytesIO()
    _text_image(lines).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


def make_pptx_with_pictures(
    directory: Path, name: str, slides: list[tuple[str, str, list[str]]]
) -> Path:
    """One slide per (title, body text, picture lines): a title-only layout with an
    optional text box, and, when lines are given, a picture of them (no text layer)."""
    import pptx
    from pptx.util import Inches

    presentation = pptx.Presentation()
    for title, body, lines in slides:
        slide = presentation.slides.add_slide(presentation.slide_layouts[5])  # title only
        slide.shapes.title.text = title
        if body:
            box = slide.shapes.add_textbox(Inches(0.5), Inches(1.5), Inches(9), Inches(2))
            box.text_frame.text = body
            box.text_frame.word_wrap = True
        if lines:
            slide.shapes.add_picture(_png_bytes(lines), Inches(0.5), Inches(3.5), Inches(9))
    path = _target(directory, name)
    presentation.save(str(path))
    return path


def make_docx_with_picture(directory: Path, name: str, text: str, lines: list[str]) -> Path:
    """A paragraph of `text`, then an inline picture of `lines`, then "The end."."""
    from docx.shared import Inches

    document = docx.Document()
    document.add_paragraph(text)
    document.add_picture(_png_bytes(lines), width=Inches(6))
    document.add_paragraph("The end.")
    return _saved(document, directory, name)


def make_docx_with_vml_picture(directory: Path, name: str, text: str, lines: list[str]) -> Path:
    """A paragraph of `text`, then a picture of `lines` the way Word before 2010 stored
    it (VML: `w:pict/v:shape/v:imagedata r:id`), then "The end."."""
    from docx.oxml import parse_xml

    document = docx.Document()
    document.add_paragraph(text)
    rid, _ = document.part.get_or_add_image(_png_bytes(lines))
    run = document.add_paragraph().add_run()
    run._r.append(
        parse_xml(
            '<w:pict xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
            'xmlns:v="urn:schemas-microsoft-com:vml" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<v:shape style="width:420pt;height:60pt">'
            f'<v:imagedata r:id="{rid}"/></v:shape></w:pict>'
        )
    )
    document.add_paragraph("The end.")
    return _saved(document, directory, name)


def make_docx_with_margin_pictures(
    directory: Path, name: str, text: str, header: list[str], footer: list[str]
) -> Path:
    """A body of `text`; a header with typed text and a picture of `header`, a footer
    with a picture of `footer` (a scan placed behind the page, a letterhead)."""
    from docx.shared import Inches

    document = docx.Document()
    document.add_paragraph(text)
    section = document.sections[0]
    paragraph = section.header.paragraphs[0]
    paragraph.text = "Typed header boilerplate"
    paragraph.add_run().add_picture(_png_bytes(header), width=Inches(6))
    section.footer.paragraphs[0].add_run().add_picture(_png_bytes(footer), width=Inches(6))
    return _saved(document, directory, name)


def make_many_page_scan(directory: Path, name: str, pages: int, lines: list[str]) -> Path:
    """A PDF of `pages` image-only pages that all draw one shared image of `lines`:
    a 10,000-page scan in well under a megabyte, written object by object."""
    import zlib

    image = _text_image(lines).reduce(2)
    width, height = image.size
    pixels = zlib.compress(image.tobytes())
    draw = f"q {width * 0.5:.0f} 0 0 {height * 0.5:.0f} 20 400 cm /Im0 Do Q".encode()
    first_page = 6  # objects 1-5: catalog, page tree, image, content stream, resources
    kids = " ".join(f"{first_page + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Count {pages} /Kids [{kids}] >>".encode(),
        f"<< /Type /XObject /Subtype /Image /Width {width} /Height {height} "
        f"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode "
        f"/Length {len(pixels)} >>\nstream\n".encode()
        + pixels
        + b"\nendstream",
        f"<< /Length {len(draw)} >>\nstream\n".encode() + draw + b"\nendstream",
        b"<< /XObject << /Im0 3 0 R >> >>",
    ]
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources 5 0 R /Contents 4 0 R >>"
    )
    objects.extend([page] * pages)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    path = _target(directory, name)
    path.write_bytes(bytes(out))
    return path
