"""Arabic and Hebrew PDF text comes out in logical (reading) order, whichever way the
PDF producer drew it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.pipeline.parsers import parse_document
from ingest.pipeline.parsers.rtl import logical_order
from ingest.pipeline.segments import ParseLimits
from tests.fixtures_formats import make_rtl_pdf

# "The student said: I know nothing about peace, in the year 2026 PDF": the article
# "ال", two lam-alef ligatures ("لا", "السلام"), a number and a Latin word.
ARABIC = "قال الطالب لا أعرف شيئا عن السلام في عام 2026 PDF"
# "Hello beautiful world, very 42 ABC": final letters, a number, a Latin word.
HEBREW = "שלום עולם יפה מאוד 42 ABC"


def pdf_text(path: Path) -> str:
    segments = parse_document(path.read_bytes(), path.name, ParseLimits(ocr="off"))
    return "\n".join(segment.text for segment in segments)


@pytest.mark.parametrize("shaped", [True, False], ids=["shaped-ligatures", "visual-order"])
def test_arabic_and_hebrew_pdf_lines_read_in_logical_order(tmp_path: Path, shaped: bool) -> None:
    path = make_rtl_pdf(tmp_path, "rtl.pdf", [ARABIC, HEBREW, "Plain English 7"], shaped=shaped)

    assert pdf_text(path).splitlines() == [ARABIC, HEBREW, "Plain English 7"]


def test_presentation_forms_become_letters_and_visual_lines_are_reversed() -> None:
    # "ﻻ" (one code point, lam-alef isolated form) and final/initial forms, drawn from
    # the left: "كلام" read backwards in glyph codes.
    visual = "\ufee1\ufefc\ufedb"

    assert logical_order(visual) == "كلام"


def test_left_to_right_text_is_untouched() -> None:
    text = "Price (EUR): 12.50\r\nال"  # a line without RTL letters keeps its brackets

    assert logical_order(text).splitlines()[0] == "Price (EUR): 12.50"


def test_one_word_that_could_read_either_way_is_left_alone() -> None:
    # "أولا" ("first") ends in "لا", as a reversed word with the article would.
    assert logical_order("أولا") == "أولا"
