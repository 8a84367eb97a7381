"""parse_document on generated files of every supported format, good and bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.errors import (
    ContentMismatch,
    CorruptDocument,
    DocumentRejected,
    EmptyDocument,
    IngestError,
    UnsupportedFormat,
)
from ingest.pipeline.filenames import SOURCE_LANGUAGES
from ingest.pipeline.parsers import PARSER_VERSION, SUPPORTED_EXTENSIONS, parse_document
from ingest.pipeline.parsers.sniff import check_upload
from ingest.pipeline.segments import ParseLimits, Segment
from tests.fixtures_docs import (
    COOKIE_TEXT,
    HEADER_TEXT,
    make_binary_txt,
    make_corrupt_pdf,
    make_csv,
    make_docx,
    make_eml,
    make_empty,
    make_encrypted_pdf,
    make_html,
    make_json,
    make_md,
    make_pdf,
    make_pptx,
    make_txt,
    make_xlsx,
)

LIMITS = ParseLimits()


def parse(path: Path, limits: ParseLimits = LIMITS) -> list[Segment]:
    return parse_document(path.read_bytes(), path.name, limits)


def full_text(segments: list[Segment]) -> str:
    return "\n".join(segment.text for segment in segments)


# --- the public constants -----------------------------------------------------


def test_supported_extensions_are_the_documented_set() -> None:
    assert {
        ".txt",
        ".md",
        ".markdown",
        ".html",
        ".htm",
        ".pdf",
        ".docx",
        ".pptx",
        ".xlsx",
        ".csv",
        ".json",
        ".eml",
        # formats beyond the Office/PDF/HTML core (parser version 3)
        ".mdx",
        ".rst",
        ".xml",
        ".rtf",
        ".odt",
        ".ods",
        ".odp",
        ".epub",
        ".tsv",
        ".msg",
        # images, read by OCR
        ".png",
        ".jpg",
        ".jpeg",
        ".tif",
        ".tiff",
        ".webp",
        # archives: their members are child documents (pipeline/containers.py)
        ".zip",
    } | set(SOURCE_LANGUAGES) == SUPPORTED_EXTENSIONS


def test_parser_version_is_a_non_empty_string() -> None:
    assert isinstance(PARSER_VERSION, str)
    assert PARSER_VERSION


# --- text and Markdown --------------------------------------------------------


def test_txt_is_one_segment_with_normalised_newlines(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"first line about zeppelins\r\nsecond line\rthird line\n")

    segments = parse(path)

    assert segments == [Segment(text="first line about zeppelins\nsecond line\nthird line")]


def test_utf16_text_with_bom_decodes(tmp_path: Path) -> None:
    path = make_txt(tmp_path, "wide.txt", "Grüße aus Köln: quokka\n", encoding="utf-16")

    assert full_text(parse(path)) == "Grüße aus Köln: quokka"


def test_utf16_text_without_bom_decodes(tmp_path: Path) -> None:
    path = make_txt(
        tmp_path, "wide.txt", "Windows wrote this marmoset note\n", encoding="utf-16-le"
    )

    assert full_text(parse(path)) == "Windows wrote this marmoset note"


def test_legacy_single_byte_text_is_detected(tmp_path: Path) -> None:
    text = (
        "Die schöne Frau hat einen Kaffee mit Kuchen gegessen. Sie sagte: Das war köstlich! "
        "Danach gingen wir über die Brücke zum Fluss und schauten den Schiffen zu. "
    ) * 3
    path = make_txt(tmp_path, "legacy.txt", text, encoding="cp1252")

    extracted = full_text(parse(path))

    assert "schöne" in extracted
    assert "Brücke" in extracted


# Western European text as Windows-1252 bytes: several of its accented letters
# (è ñ ã à ò ù ì å æ ø) are bytes that Windows-1250 reads as Central European
# letters (č ń ă ŕ ň ů ě ĺ ć ř), so a wrong guess yields plausible-looking mojibake.
WESTERN_TEXTS = {
    "French": "Il est très tard : Hélène est déjà là, près de la rivière où l'on pêche.",
    "Spanish": "El niño jugaba en el jardín mientras su madre preparaba la cena. Mañana "
    "iremos a la montaña con los señores García y Muñoz.",
    "Portuguese": "O João comeu pão com manteiga e bebeu um café. A reunião foi às três "
    "horas e a informação não chegou a tempo.",
    "Italian": "La città è bella e il caffè è buono. Perché non andiamo più spesso al "
    "mare? Però la settimana prossima sarà piovosa.",
    "Danish": "Vi så en grøn bil på vejen. Børnene legede i haven, og bedstemor lavede "
    "æblekage til os alle sammen på søndag.",
    "several languages": "Il a été très content. El niño juega. João comeu pão com açúcar.",
}
# Central European text as Windows-1250 bytes, with letters Windows-1252 lacks.
CENTRAL_TEXTS = {
    "Czech": "Tři sta třicet tři stříbrných stříkaček přestříkalo přes tři sta třicet "
    "tři stříbrných střech. Řeka teče přes město a lidé se dívají na čluny.",
    "Polish": "Zażółć gęślą jaźń. Łódź leży nad rzeką, a ścieżka prowadzi przez las do "
    "małej wioski, gdzie mieszkają ludzie.",
}


@pytest.mark.parametrize("language", sorted(WESTERN_TEXTS))
def test_undeclared_windows_1252_text_keeps_western_accents(tmp_path: Path, language: str) -> None:
    text = WESTERN_TEXTS[language]
    path = make_txt(tmp_path, "legacy.txt", text, encoding="cp1252")

    assert full_text(parse(path)) == text


@pytest.mark.parametrize("language", sorted(WESTERN_TEXTS))
def test_undeclared_windows_1252_html_keeps_western_accents(tmp_path: Path, language: str) -> None:
    text = WESTERN_TEXTS[language]
    path = make_html(
        tmp_path,
        "legacy.html",
        main_text=text,
        nav_text="Accueil",
        footer_text="Mentions légales",
        encoding="cp1252",
        declare_charset=False,
    )
    assert b"charset" not in path.read_bytes()

    extracted = full_text(parse(path))

    assert text in extracted
    assert "légales" not in extracted  # the footer is still left out


@pytest.mark.parametrize("language", sorted(CENTRAL_TEXTS))
@pytest.mark.parametrize("extension", [".txt", ".html"])
def test_undeclared_windows_1250_text_keeps_central_european_letters(
    tmp_path: Path, language: str, extension: str
) -> None:
    text = CENTRAL_TEXTS[language]
    if extension == ".txt":
        path = make_txt(tmp_path, "legacy.txt", text, encoding="cp1250")
    else:
        path = make_html(
            tmp_path,
            "legacy.html",
            main_text=text,
            nav_text="Start",
            footer_text="Kontakt",
            encoding="cp1250",
            declare_charset=False,
        )
    with pytest.raises(UnicodeEncodeError):
        text.encode("cp1252")  # the text really needs Windows-1250

    assert text in full_text(parse(path))


@pytest.mark.parametrize("text", ["très bien", "Café crème", "À bientôt !"])
def test_short_windows_1252_note_keeps_its_accents(tmp_path: Path, text: str) -> None:
    # So few high bytes that the detector's own guess is Big5 or an Arabic code page.
    path = make_txt(tmp_path, "note.txt", text, encoding="cp1252")

    assert full_text(parse(path)) == text


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("cp1251", "Привет, мир! Это тестовый текст на русском языке, довольно длинный."),
        (  # mostly English: its Cyrillic must still not turn into Latin accents
            "cp1251",
            "Install the package with pip and configure PostgreSQL. Затем запустите "
            "миграции. Finally start the worker with systemd.",
        ),
    ],
    ids=["Russian", "Russian amid English"],
)
def test_undeclared_non_latin_text_is_not_read_as_a_latin_code_page(
    tmp_path: Path, encoding: str, text: str
) -> None:
    path = make_txt(tmp_path, "legacy.txt", text, encoding=encoding)

    assert full_text(parse(path)) == text


def test_markdown_headings_become_segment_headings(tmp_path: Path) -> None:
    path = make_md(
        tmp_path,
        "guide.md",
        "Intro before any heading.\n\n"
        "# Installing\n\nRun the pelican installer.\n\n"
        "```bash\n# not a heading: a shell comment\necho hi\n```\n\n"
        "## Configuring ##\n\nEdit the flamingo file.\n",
    )

    segments = parse(path)

    # A subsection is headed by its path of headings.
    assert [s.heading for s in segments] == [None, "Installing", "Installing > Configuring"]
    assert segments[1].text.startswith("# Installing")
    assert "# not a heading: a shell comment" in segments[1].text
    assert "flamingo" in segments[2].text


def test_markdown_extension_alias(tmp_path: Path) -> None:
    path = make_md(tmp_path, "README.MARKDOWN", "# Title\n\nBody about okapis.\n")

    assert parse(path)[0].heading == "Title"


# --- HTML ---------------------------------------------------------------------


def test_html_keeps_the_article_and_drops_boilerplate(tmp_path: Path) -> None:
    path = make_html(
        tmp_path,
        "report.html",
        main_text="The capybara colony near the reservoir doubled in size this year.",
        nav_text="Homepage navigation xylophone",
        footer_text="Copyright footer zeitgeist 2024",
    )

    segments = parse(path)
    extracted = full_text(segments)

    assert "capybara colony" in extracted
    assert "old quarry" in extracted
    assert "xylophone" not in extracted
    assert "zeitgeist" not in extracted
    assert "cookies" not in extracted.lower()
    assert COOKIE_TEXT not in extracted
    assert HEADER_TEXT not in extracted
    assert segments[0].heading == "Quarterly field report"


def test_html_honours_a_declared_legacy_charset(tmp_path: Path) -> None:
    path = make_html(
        tmp_path,
        "legacy.htm",
        main_text="Die Brücke über den Fluss wurde im Frühjahr für den Verkehr geöffnet.",
        nav_text="Start",
        footer_text="Impressum",
        encoding="windows-1252",
    )

    assert "Die Brücke über den Fluss" in full_text(parse(path))


def test_html_fragment_still_yields_text(tmp_path: Path) -> None:
    path = tmp_path / "fragment.html"
    path.write_text("<h3>Jahresabschluss zum Geschäftsjahr 2020</h3>", encoding="utf-8")

    assert "Jahresabschluss" in full_text(parse(path))


# --- PDF ----------------------------------------------------------------------


def test_pdf_has_one_segment_per_page_numbered_from_one(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path,
        "manual.pdf",
        ["Alpha page mentions aardvark.", "", "Gamma page mentions gazelle."],
    )

    segments = parse(path)

    # The blank second page yields no segment but does not shift the numbering.
    assert [s.page for s in segments] == [1, 3]
    assert "aardvark" in segments[0].text
    assert "gazelle" in segments[1].text


def test_password_protected_pdf_is_corrupt(tmp_path: Path) -> None:
    path = make_encrypted_pdf(tmp_path, "secret.pdf", "hidden walrus", user_password="pw")

    with pytest.raises(CorruptDocument, match="PDF is password-protected"):
        parse(path)


def test_corrupt_pdf_is_reported_as_not_a_valid_pdf(tmp_path: Path) -> None:
    path = make_corrupt_pdf(tmp_path, "broken.pdf")

    with pytest.raises(CorruptDocument, match=r"^not a valid PDF: .+"):
        parse(path)


def test_pdf_without_text_is_empty(tmp_path: Path) -> None:
    path = make_pdf(tmp_path, "blank.pdf", ["", ""])

    with pytest.raises(EmptyDocument, match="no text could be extracted from this PDF file"):
        parse(path)


# --- DOCX ---------------------------------------------------------------------


def test_docx_keeps_table_text_and_heading(tmp_path: Path) -> None:
    path = make_docx(
        tmp_path,
        "plan.docx",
        paragraphs=["The budget covers the narwhal survey."],
        table_rows=[["Item", "Cost"], ["Hydrophone", "1200"], ["Kayak rental", "300"]],
        heading="Survey plan",
    )

    segments = parse(path)
    extracted = full_text(segments)

    assert "narwhal survey" in extracted
    # Words that exist only inside the table.
    # The table is a Markdown table: rows and columns survive into the chunk text.
    assert (
        "| Item | Cost |\n| --- | --- |\n| Hydrophone | 1200 |\n| Kayak rental | 300 |" in extracted
    )
    assert segments[0].heading == "Survey plan"
    assert segments[0].text.startswith("Survey plan")


def test_docx_headings_split_segments(tmp_path: Path) -> None:
    document_path = make_docx(tmp_path, "two.docx", ["Before the second heading."], [])
    import docx  # local: only this test appends to the generated file

    document = docx.Document(str(document_path))
    document.add_heading("Results", level=2)
    document.add_paragraph("The lemur count rose.")
    document.save(str(document_path))

    segments = parse(document_path)

    assert [s.heading for s in segments] == ["Project overview", "Project overview > Results"]
    assert "lemur" in segments[1].text


def test_zero_byte_docx_is_empty_not_corrupt(tmp_path: Path) -> None:
    path = make_empty(tmp_path, "nothing.docx")

    with pytest.raises(EmptyDocument, match=r"the file is empty \(0 bytes\)"):
        parse(path)


def test_text_named_docx_is_corrupt(tmp_path: Path) -> None:
    path = make_txt(tmp_path, "fake.docx", "this is not a zip archive")

    with pytest.raises(
        CorruptDocument, match="not a valid DOCX \\(Word\\) file: file is not a zip archive"
    ):
        parse(path)


# --- PPTX ---------------------------------------------------------------------


def test_pptx_has_one_segment_per_slide_with_title_and_notes(tmp_path: Path) -> None:
    path = make_pptx(
        tmp_path,
        "deck.pptx",
        [("Opening", "Welcome to the axolotl briefing"), ("Findings", "Salamanders thrive")],
        notes={2: "Mention the wetland permit"},
    )

    segments = parse(path)

    assert [(s.page, s.heading) for s in segments] == [(1, "Opening"), (2, "Findings")]
    assert "axolotl briefing" in segments[0].text
    assert "Salamanders thrive" in segments[1].text
    assert "Notes: Mention the wetland permit" in segments[1].text


# --- XLSX ---------------------------------------------------------------------


def test_xlsx_has_one_segment_per_non_empty_sheet(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path,
        "stock.xlsx",
        [["Part", "Quantity"], ["Sprocket", 12], ["Flange", 3.0]],
        extra_sheets={"Empty": [], "Suppliers": [["Globex", None, "Springfield"]]},
    )

    segments = parse(path)

    assert [s.heading for s in segments] == ["Inventory", "Suppliers"]
    # Each sheet is a Markdown table: the columns survive into the chunk text.
    assert segments[0].text == (
        "| Part | Quantity |\n| --- | --- |\n| Sprocket | 12 |\n| Flange | 3 |"
    )
    assert segments[1].text == "| Globex |  | Springfield |\n| --- | --- | --- |"


# --- CSV ----------------------------------------------------------------------


def test_csv_with_header_labels_every_value(tmp_path: Path) -> None:
    path = make_csv(
        tmp_path,
        "people.csv",
        [["name", "city", "age"], ["Ada", "London", "36"], ["Grace", "Arlington", "85"]],
    )

    assert parse(path) == [
        Segment(text="name: Ada; city: London; age: 36\nname: Grace; city: Arlington; age: 85")
    ]


def test_csv_semicolon_dialect_is_sniffed(tmp_path: Path) -> None:
    path = make_csv(
        tmp_path,
        "plain.csv",
        [["Tapir", "Brazil"], ["Okapi", "Congo"], ["Quokka", "Australia"]],
        delimiter=";",
    )

    assert "Okapi | Congo" in full_text(parse(path))


def test_csv_field_longer_than_the_csv_module_default_is_kept(tmp_path: Path) -> None:
    long_value = "wombat " * 40_000  # 280,000 chars > csv's default 131,072 field limit
    path = make_csv(tmp_path, "long.csv", [["id", "notes"], ["1", long_value]])

    assert "wombat wombat" in full_text(parse(path))


# --- JSON ---------------------------------------------------------------------


def test_json_is_flattened_to_paths(tmp_path: Path) -> None:
    path = make_json(
        tmp_path,
        "record.json",
        {"animal": {"name": "pangolin", "tags": ["scaly", "nocturnal"]}, "count": 4, "ok": True},
    )

    assert parse(path)[0].text.splitlines() == [
        "animal.name: pangolin",
        "animal.tags[0]: scaly",
        "animal.tags[1]: nocturnal",
        "count: 4",
        "ok: true",
    ]


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}\n', encoding="utf-8")

    with pytest.raises(CorruptDocument, match=r"^not valid JSON: line 4 column 1: .+"):
        parse(path)


# --- e-mail -------------------------------------------------------------------


def test_eml_has_header_block_and_plain_body_without_attachments(tmp_path: Path) -> None:
    path = make_eml(
        tmp_path,
        "memo.eml",
        subject="Budget for the ibis project",
        body="Please approve the ibis budget by Friday.",
        html_body="<html><body><p>HTML twin of the body</p></body></html>",
        attachment=("data.bin", b"attachment-only-word-zebu"),
    )

    segments = parse(path)

    assert len(segments) == 1
    assert segments[0].heading == "Budget for the ibis project"
    text = segments[0].text
    assert text.startswith("Subject: Budget for the ibis project\nFrom: Ada Lovelace")
    assert "To: Charles Babbage <charles@example.org>" in text
    assert "Date: " in text
    assert "approve the ibis budget" in text
    assert "HTML twin" not in text
    assert "zebu" not in text


def test_eml_html_only_body_is_reduced_to_text(tmp_path: Path) -> None:
    path = tmp_path / "html.eml"
    path.write_bytes(
        b"Subject: Gala\r\nFrom: a@example.org\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><body><p>The <b>okapi</b> gala starts at eight.</p></body></html>\r\n"
    )

    text = full_text(parse(path))

    assert "okapi" in text
    assert "<b>" not in text


def test_eml_saved_as_utf16_is_read(tmp_path: Path) -> None:
    original = make_eml(tmp_path, "plain.eml", subject="Heron count", body="Seven herons today.")
    path = tmp_path / "wide.eml"
    path.write_bytes(original.read_bytes().decode("ascii").encode("utf-16"))

    segments = parse(path)

    assert segments[0].heading == "Heron count"
    assert "Seven herons today." in segments[0].text


def test_eml_mislabelled_us_ascii_body_is_read_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "label.eml"
    path.write_bytes(
        b"Subject: Caf\xc3\xa9\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        + "Crème brûlée for the dormouse.".encode()
    )

    assert "Crème brûlée for the dormouse." in full_text(parse(path))


# --- inputs that must be refused --------------------------------------------------


@pytest.mark.parametrize("extension", sorted(SUPPORTED_EXTENSIONS))
def test_zero_byte_file_is_empty_for_every_format(tmp_path: Path, extension: str) -> None:
    path = make_empty(tmp_path, f"empty{extension}")

    with pytest.raises(EmptyDocument, match=r"^the file is empty \(0 bytes\)$"):
        parse(path)


@pytest.mark.parametrize("extension", [".txt", ".md", ".csv", ".html", ".eml"])
def test_whitespace_only_file_has_no_text(tmp_path: Path, extension: str) -> None:
    path = make_txt(tmp_path, f"blank{extension}", "  \n\t\n   \n")

    with pytest.raises(EmptyDocument, match=r"^no text could be extracted from this .+ file$"):
        parse(path)


def test_binary_bytes_named_txt_are_corrupt(tmp_path: Path) -> None:
    path = make_binary_txt(tmp_path, "photo.txt")

    with pytest.raises(CorruptDocument, match=r"^binary content in a text file \(\.txt\): "):
        parse(path)


@pytest.mark.parametrize("filename", ["slides.key", "archive.tar.gz", "README"])
def test_unknown_extension_is_unsupported(filename: str) -> None:
    with pytest.raises(UnsupportedFormat, match="unsupported file type") as caught:
        parse_document(b"content", filename, LIMITS)

    message = str(caught.value)
    assert "supported: " in message
    assert ".pdf" in message
    if filename == "README":
        assert "'no extension'" in message


def test_extension_match_ignores_case(tmp_path: Path) -> None:
    path = make_txt(tmp_path, "SHOUT.TXT", "upper-case extension")

    assert full_text(parse(path)) == "upper-case extension"


@pytest.mark.parametrize(
    "extension", [".pdf", ".docx", ".pptx", ".xlsx", ".odt", ".ods", ".odp", ".epub", ".msg"]
)
def test_random_bytes_in_binary_formats_are_corrupt(tmp_path: Path, extension: str) -> None:
    path = make_binary_txt(tmp_path, f"noise{extension}")

    with pytest.raises(CorruptDocument, match=r"^not a valid "):
        parse(path)


def test_text_over_the_limit_is_rejected(tmp_path: Path) -> None:
    path = make_txt(tmp_path, "long.txt", "x" * 1001)

    with pytest.raises(
        DocumentRejected, match="extracted text exceeds the limit of 1000 characters"
    ):
        parse(path, ParseLimits(max_text_chars=1000))


def test_pdf_over_the_limit_is_rejected(tmp_path: Path) -> None:
    path = make_pdf(tmp_path, "long.pdf", ["word " * 100] * 5)

    with pytest.raises(DocumentRejected, match="exceeds the limit of 1000 characters"):
        parse(path, ParseLimits(max_text_chars=1000))


def test_text_at_the_limit_is_accepted(tmp_path: Path) -> None:
    path = make_txt(tmp_path, "exact.txt", "y" * 1000)

    assert len(parse(path, ParseLimits(max_text_chars=1000))[0].text) == 1000


def test_every_error_is_an_ingest_error_with_a_message(tmp_path: Path) -> None:
    bad_inputs = [
        make_corrupt_pdf(tmp_path, "a.pdf"),
        make_binary_txt(tmp_path, "b.txt"),
        make_empty(tmp_path, "c.docx"),
        make_txt(tmp_path, "d.json", json.dumps({"x": 1})[:-1]),
        make_txt(tmp_path, "e.xlsx", "plain words"),
    ]
    for path in bad_inputs:
        with pytest.raises(IngestError) as caught:
            parse(path)
        assert str(caught.value).strip(), path.name


# --- upload sniffing: does the content look like what its name claims? ---------------


@pytest.mark.parametrize("filename", ["image.bmp", "noext"])
def test_upload_of_an_unparsed_type_is_unsupported(filename: str) -> None:
    with pytest.raises(UnsupportedFormat, match=f"^{filename}: .* is not a supported type"):
        check_upload(filename, b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("filename", "head", "reason"),
    [
        ("report.pdf", b"just some text, not a PDF", "the content is not a PDF file"),
        ("sheet.xlsx", b"plain text", "the content is not a XLSX file"),
        ("notes.txt", b"abc\x00\x01\x02" * 10, "binary content in a text file"),
    ],
)
def test_upload_whose_bytes_contradict_its_name_is_a_mismatch(
    filename: str, head: bytes, reason: str
) -> None:
    with pytest.raises(ContentMismatch, match=f"^{filename}: {reason}$"):
        check_upload(filename, head)


@pytest.mark.parametrize(
    ("filename", "head"),
    [
        ("report.pdf", b"%PDF-1.7\n"),
        ("deck.pptx", b"PK\x03\x04rest"),
        ("wide.txt", "UTF-16 with its byte-order mark".encode("utf-16")),
        ("empty.docx", b""),
    ],
)
def test_upload_that_looks_like_its_name_passes(filename: str, head: bytes) -> None:
    check_upload(filename, head)
