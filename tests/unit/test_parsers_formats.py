"""The formats beyond the Office/PDF/HTML core, each on a generated file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ingest.errors import ContentMismatch, CorruptDocument, DocumentRejected
from ingest.pipeline.parsers import parse_document
from ingest.pipeline.parsers.charts import chart_text
from ingest.pipeline.parsers.sniff import check_upload
from ingest.pipeline.segments import ParseLimits, Segment
from tests.fixtures_docs import make_md, make_pptx, make_txt, make_xlsx
from tests.fixtures_formats import (
    RTF_SAMPLE,
    make_docx_with_hidden_text,
    make_docx_with_lists,
    make_epub,
    make_odp,
    make_ods,
    make_odt,
    make_odt_with_lists,
    make_pptx_with_comments,
    make_pptx_with_table_and_chart,
    make_strict_docx,
    make_xlsx_with_comment,
    to_strict,
)
from tests.fixtures_msg import make_msg


def parse(path: Path) -> list[Segment]:
    return parse_document(path.read_bytes(), path.name, ParseLimits())


def full_text(segments: list[Segment]) -> str:
    return "\n".join(segment.text for segment in segments)


def test_rst_sections_are_headed_by_their_title_path(tmp_path: Path) -> None:
    source = (
        "Guide\n=====\n\nWelcome to the guide.\n\n"
        "Install\n-------\n\nRun the *installer* twice.\n\n"
        ".. include:: /etc/hostname\n"
    )
    path = make_md(tmp_path, "guide.rst", source)

    segments = parse(path)

    assert [(s.heading, s.text) for s in segments] == [
        ("Guide", "Guide\n\nWelcome to the guide."),
        ("Guide > Install", "Install\n\nRun the installer twice."),
    ]


def test_xml_text_content_in_document_order(tmp_path: Path) -> None:
    path = make_txt(
        tmp_path,
        "catalog.xml",
        '<?xml version="1.0"?><catalog><book id="1"><title>Dormouse tales</title>'
        "<price>12</price></book> trailing note</catalog>",
    )

    assert full_text(parse(path)) == "Dormouse tales\n12\ntrailing note"


def test_xml_utf16_with_a_contradicting_declaration_is_read(tmp_path: Path) -> None:
    path = make_txt(
        tmp_path, "wide.xml", '<?xml version="1.0" encoding="UTF-8"?><a>Crème</a>', "utf-16"
    )

    assert full_text(parse(path)) == "Crème"


def test_xml_bomb_is_refused(tmp_path: Path) -> None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
        + "]><lolz>&lol9;</lolz>"
    ).replace("&lol0;", "&lol;")
    path = make_txt(tmp_path, "bomb.xml", laughs)

    with pytest.raises(DocumentRejected, match="DTD or entities"):
        parse(path)


def test_malformed_xml_is_corrupt(tmp_path: Path) -> None:
    path = make_txt(tmp_path, "broken.xml", "<a><b></a>")

    with pytest.raises(CorruptDocument, match=r"^not a valid XML file: mismatched tag"):
        parse(path)


def test_rtf_text_with_escaped_accents(tmp_path: Path) -> None:
    path = tmp_path / "letter.rtf"
    path.write_bytes(RTF_SAMPLE)

    assert full_text(parse(path)) == "The café opens at nine.\nBold words stay words."


def test_odt_heading_path_comment_and_table(tmp_path: Path) -> None:
    segments = parse(make_odt(tmp_path, "plan.odt"))

    assert [s.heading for s in segments] == ["Chapter 2", "Chapter 2 > Pricing"]
    pricing = segments[1].text
    assert "The basic plan costs nine euros. [Comment: Check this with finance]" in pricing
    assert "| Plan | Price |\n| --- | --- |\n| Basic | 9 EUR |" in pricing


def test_odt_list_items_are_marked_and_nested(tmp_path: Path) -> None:
    (segment,) = parse(make_odt_with_lists(tmp_path, "shopping.odt"))

    assert segment.text.splitlines() == [
        "Shopping",
        "Bring these:",
        "- Apples",
        "- Pears",
        "  - Green ones",
        "    if ripe",
    ]


def test_ods_one_markdown_table_per_non_empty_sheet(tmp_path: Path) -> None:
    path = make_ods(
        tmp_path,
        "budget.ods",
        {"Costs": [["Item", "Cost"], ["Tea", "3"]], "Blank": [], "People": [["Ann"]]},
    )

    segments = parse(path)

    assert [(s.heading, s.text) for s in segments] == [
        ("Costs", "| Item | Cost |\n| --- | --- |\n| Tea | 3 |"),
        ("People", "| Ann |\n| --- |"),
    ]


def test_odp_one_segment_per_slide_with_title_and_notes(tmp_path: Path) -> None:
    path = make_odp(
        tmp_path,
        "deck.odp",
        [("Welcome", "Hello everyone", "Smile first"), ("Roadmap", "Ship in May", "Be brief")],
    )

    segments = parse(path)

    assert [(s.page, s.heading) for s in segments] == [(1, "Welcome"), (2, "Roadmap")]
    assert segments[1].text == "Roadmap\nShip in May\nNotes: Be brief"


def test_epub_chapters_follow_the_spine(tmp_path: Path) -> None:
    path = make_epub(
        tmp_path,
        "book.epub",
        [
            ("Down the rabbit hole", "Alice was beginning to get very tired."),
            ("The pool of tears", "Curiouser and curiouser, cried Alice."),
        ],
    )

    text = full_text(parse(path))

    first = text.index("Alice was beginning")
    assert first < text.index("Curiouser and curiouser")


def test_tsv_rows_are_labelled_by_the_header(tmp_path: Path) -> None:
    path = make_txt(tmp_path, "cups.tsv", "team\tyear\nMontreal\t1993\nDallas\t1999\n")

    assert full_text(parse(path)) == "team: Montreal; year: 1993\nteam: Dallas; year: 1999"


@pytest.mark.parametrize("name", ["notes.markdown", "page.mdx"])
def test_markdown_aliases_split_on_headings(tmp_path: Path, name: str) -> None:
    path = make_md(tmp_path, name, "# Intro\nHello\n\n# Usage\nRun it\n")

    assert [s.heading for s in parse(path)] == ["Intro", "Usage"]


@pytest.mark.parametrize(
    ("name", "language"),
    [("tool.py", "Python"), ("app.ts", "TypeScript"), ("query.sql", "SQL"), ("ci.yaml", "YAML")],
)
def test_source_code_is_text_headed_by_its_language(
    tmp_path: Path, name: str, language: str
) -> None:
    path = make_txt(tmp_path, name, "line one\n    indented line two\n")

    assert parse(path) == [
        Segment(text="line one\n    indented line two", heading=f"{language} source")
    ]


def test_outlook_msg_has_header_block_and_body(tmp_path: Path) -> None:
    path = make_msg(
        tmp_path,
        "figures.msg",
        subject="Quarterly figures",
        body="The dormouse ate the budget.",
        sender="alice@example.com",
        to="bob@example.com",
    )

    segments = parse(path)

    assert [s.heading for s in segments] == ["Quarterly figures"]
    text = segments[0].text
    assert text.startswith("Subject: Quarterly figures\nFrom: ")
    assert "To: bob@example.com" in text
    assert text.endswith("\n\nThe dormouse ate the budget.")


def test_strict_open_xml_docx_is_read(tmp_path: Path) -> None:
    path = make_strict_docx(tmp_path, "strict.docx", "Terms", "Payment is due in thirty days.")

    assert parse(path) == [Segment(text="Terms\nPayment is due in thirty days.", heading="Terms")]


@pytest.mark.parametrize(
    ("filename", "head"),
    [
        ("plan.odt", b"PK\x03\x04"),
        ("book.epub", b"PK\x03\x04"),
        ("mail.msg", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
        ("tool.py", b"import os\n"),
        ("guide.rst", b"Guide\n=====\n"),
    ],
)
def test_upload_of_a_new_format_that_looks_right_passes(filename: str, head: bytes) -> None:
    check_upload(filename, head)


@pytest.mark.parametrize(
    ("filename", "head"),
    [
        ("plan.odt", b"plain text"),
        ("mail.msg", b"From: someone\n"),
        ("tool.py", b"\x7fELF\x02\x01\x00\x00"),
    ],
)
def test_upload_of_a_new_format_with_contradicting_bytes_is_a_mismatch(
    filename: str, head: bytes
) -> None:
    with pytest.raises(ContentMismatch):
        check_upload(filename, head)


# --- nothing silently dropped: DOCX ---------------------------------------------------


@pytest.fixture
def hidden_docx_text(tmp_path: Path) -> str:
    return full_text(parse(make_docx_with_hidden_text(tmp_path, "hidden.docx")))


def test_docx_block_content_control_text_is_kept(hidden_docx_text: str) -> None:
    assert "Client: Okapi Holdings" in hidden_docx_text


def test_docx_inline_content_control_text_is_kept(hidden_docx_text: str) -> None:
    assert "Signed on 12 March 2026" in hidden_docx_text


def test_docx_comment_is_kept_as_marked_text(hidden_docx_text: str) -> None:
    assert "The fee is fixed. [Comment: Ask legal about indexation]" in hidden_docx_text


def test_docx_equation_is_kept_as_linear_text(hidden_docx_text: str) -> None:
    assert "Energy: E=mc^(2)" in hidden_docx_text


def test_docx_chart_title_and_data_labels_are_kept(hidden_docx_text: str) -> None:
    assert "[Chart: Sales by region; Sales: North 120, South 80]" in hidden_docx_text


def test_docx_list_items_are_marked_and_nested(tmp_path: Path) -> None:
    (segment,) = parse(make_docx_with_lists(tmp_path, "shopping.docx"))

    assert segment.heading == "Shopping"
    assert segment.text.splitlines() == [
        "Shopping",
        "Bring these:",
        "- Apples",
        "  - Green ones",
        "- Pears",
        "Thanks!",
    ]


@pytest.mark.timeout(30)
def test_docx_styles_based_on_each_other_in_a_loop_still_parse(tmp_path: Path) -> None:
    import docx
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document()
    first = document.styles.add_style("Loop A", WD_STYLE_TYPE.PARAGRAPH)
    second = document.styles.add_style("Loop B", WD_STYLE_TYPE.PARAGRAPH)
    first.base_style, second.base_style = second, first
    document.add_paragraph("Round and round", style="Loop A")
    path = tmp_path / "loop.docx"
    document.save(str(path))

    assert full_text(parse(path)) == "Round and round"


# --- PPTX and XLSX: tables, charts, comments ----------------------------------------


def test_pptx_table_is_markdown_and_chart_title_and_data_labels_are_kept(
    tmp_path: Path,
) -> None:
    segments = parse(make_pptx_with_table_and_chart(tmp_path, "results.pptx"))

    assert [s.heading for s in segments] == ["Results"]
    assert "| Region | Sales |\n| --- | --- |\n| North | 120 |" in segments[0].text
    assert "[Chart: Sales by region; Sales: North 120, South Record low]" in segments[0].text


def test_chart_values_are_left_out_where_no_data_label_shows_them() -> None:
    series = (
        "<c:ser><c:tx><c:v>Sales</c:v></c:tx><c:dLbls><c:dLbl><c:idx val='1'/>"
        "<c:showCatName/></c:dLbl><c:showVal val='0'/></c:dLbls><c:cat><c:strLit>"
        "<c:pt idx='0'><c:v>North</c:v></c:pt><c:pt idx='1'><c:v>South</c:v></c:pt></c:strLit>"
        "</c:cat><c:val><c:numLit><c:pt idx='0'><c:v>120</c:v></c:pt><c:pt idx='1'><c:v>80</c:v>"
        "</c:pt></c:numLit></c:val></c:ser>"
    )
    deleted = series.replace("<c:dLbls>", "<c:dLbls><c:delete val='1'/>")
    unlabelled = series.replace("<c:dLbls>", "<c:x>").replace("</c:dLbls>", "</c:x>")
    chart = (
        "<c:chartSpace xmlns:c='http://schemas.openxmlformats.org/drawingml/2006/chart'>"
        "<c:chart><c:title><c:tx><c:strRef><c:strCache><c:pt idx='0'><c:v>Sales by region"
        "</c:v></c:pt></c:strCache></c:strRef></c:tx></c:title><c:plotArea><c:barChart>"
        f"{series}<c:dLbls><c:showVal val='1'/></c:dLbls></c:barChart>"
        f"<c:lineChart>{deleted}</c:lineChart><c:pieChart>{unlabelled}</c:pieChart>"
        "</c:plotArea></c:chart></c:chartSpace>"
    )

    # The series' own labels replace the group's: South's category only. The line
    # chart's labels are deleted, the pie chart has none.
    assert chart_text(chart.encode()) == "Sales by region; Sales: South"
    malformed = chart.replace("<c:pt idx='1'><c:v>South", "<c:pt idx='one'><c:v>South")
    assert chart_text(malformed.encode()) == "Sales by region", "a bad index is no point"


def test_pptx_comments_classic_and_modern_are_kept_as_marked_text(tmp_path: Path) -> None:
    segments = parse(make_pptx_with_comments(tmp_path, "review.pptx"))

    assert [(s.heading, s.text) for s in segments] == [
        ("Budget", "Budget\n[Comment: Check the Q3 figure]"),
        ("Plan", "Plan\n[Comment: Who owns this?]\n[Comment: Dana does]"),
    ]
    strict = parse(to_strict(make_pptx_with_comments(tmp_path / "strict", "review.pptx")))
    assert "[Comment: Check the Q3 figure]" in strict[0].text


def test_xlsx_cell_comment_is_kept_as_marked_text(tmp_path: Path) -> None:
    segments = parse(make_xlsx_with_comment(tmp_path, "prices.xlsx"))

    assert segments == [
        Segment(
            text="| Item | Price |\n| --- | --- |\n| Tea | 3 |\n[Comment B2: Raised in May]",
            heading="Prices",
        )
    ]


def test_html_table_is_markdown_and_subsections_carry_the_heading_path(tmp_path: Path) -> None:
    page = (
        "<html><body><article><h1>Prices</h1><p>Our prices for the coming season are listed "
        "below and are valid for the whole year without exception.</p><table><tr><th>Plan</th>"
        "<th>Price</th></tr><tr><td>Basic</td><td>9 EUR</td></tr></table><h2>Notes</h2><p>All "
        "prices include tax and are payable monthly by card or bank transfer.</p></article>"
        "</body></html>"
    )
    segments = parse(make_txt(tmp_path, "prices.html", page))

    assert [s.heading for s in segments] == ["Prices", "Prices > Notes"]
    assert "| Basic | 9 EUR |" in segments[0].text


def test_html_list_items_are_kept_as_markdown_items(tmp_path: Path) -> None:
    page = (
        "<html><body><article><h1>Steps</h1><p>To install the tool on a new machine, follow "
        "these steps carefully and in order.</p><ul><li>Download the installer</li><li>Run it"
        "</li></ul><ol><li>Sign in</li><li>Sync</li></ol></article></body></html>"
    )
    (segment,) = parse(make_txt(tmp_path, "steps.html", page))

    assert "- Download the installer\n- Run it\n\n1. Sign in\n2. Sync" in segment.text


def test_encrypted_outlook_msg_fails_saying_so(tmp_path: Path) -> None:
    path = make_msg(
        tmp_path,
        "secret.msg",
        subject="",
        body="",
        sender="alice@example.com",
        to="bob@example.com",
        attachments=("ATT00001.pgp-encrypted", "ATT00002.bin"),
    )

    with pytest.raises(CorruptDocument, match=r"^the Outlook message is encrypted"):
        parse(path)


def test_ods_repeated_empty_cells_keep_the_columns_aligned(tmp_path: Path) -> None:
    path = make_ods(tmp_path, "gaps.ods", {"Gaps": [["A", "B", "C", "D"], ["x", "", "", "y"]]})

    assert parse(path)[0].text == "| A | B | C | D |\n| --- | --- | --- | --- |\n| x |  |  | y |"


def test_strict_open_xml_xlsx_is_read(tmp_path: Path) -> None:
    path = to_strict(make_xlsx(tmp_path, "strict.xlsx", [["Part", "Qty"], ["Flange", 3]]))

    assert parse(path) == [
        Segment(text="| Part | Qty |\n| --- | --- |\n| Flange | 3 |", heading="Inventory")
    ]


def test_strict_open_xml_pptx_is_read(tmp_path: Path) -> None:
    path = to_strict(make_pptx(tmp_path, "strict.pptx", [("Agenda", "Budget review")]))

    assert parse(path) == [Segment(text="Agenda\nBudget review", page=1, heading="Agenda")]


def test_docx_footnote_is_kept_at_its_reference(hidden_docx_text: str) -> None:
    assert "Population grew. [Footnote: Source: the 2025 census]" in hidden_docx_text


def test_password_protected_odt_fails_saying_so(tmp_path: Path) -> None:
    # What LibreOffice writes for a password: the manifest describes the encryption,
    # content.xml holds ciphertext.
    path = tmp_path / "secret.odt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr(
            "META-INF/manifest.xml",
            '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:'
            'manifest:1.0">'
            '<manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data/>'
            "</manifest:file-entry></manifest:manifest>",
        )
        archive.writestr("content.xml", bytes(range(256)))

    with pytest.raises(
        CorruptDocument,
        match=r"^not a valid ODT \(OpenDocument text\) file: it is password-protected$",
    ):
        parse(path)
