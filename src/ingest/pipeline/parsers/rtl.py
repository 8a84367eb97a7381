"""Right-to-left (Arabic, Hebrew) PDF text in logical order.

PDFium returns a page's characters in the order it finds them, and PDF producers
disagree: some draw RTL text glyph by glyph from the left (visual order), which
comes out reversed ("םולש" for "שלום"); others are reordered by PDFium, which then
also reverses the two letters of a lam-alef ligature ("السالم" for "السلام"),
since one glyph maps to two characters. This module puts both right:

* a line whose words read backwards (Hebrew final letters first, Arabic "ال" last)
  is reversed, its left-to-right runs (digits, Latin words) kept as they are;
* the two characters of one lam-alef glyph are put in lam-then-alef order;
* Arabic presentation forms (isolated/initial/final glyph codes) become letters.

python-bidi would do the reordering, but it is LGPL: the few rules needed here
use only the Unicode database (`unicodedata`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

# Hebrew, Arabic (and supplements), and their presentation forms.
_RTL_CHARS = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_PRESENTATION_FORMS = re.compile("[\ufb1d-\ufdff\ufe70-\ufefc]+")
_LINE = re.compile(r"[^\r\n]*")
_LAM = "\u0644"
_ALEFS = frozenset("\u0627\u0622\u0623\u0625")  # alef, with madda, hamza above, below
_HEBREW_FINALS = frozenset("ךםןףץ")
_ARABIC_WORD_END = frozenset("ةى")  # ta marbuta, alef maqsura: only ever last
_WORD = re.compile(r"[\u0590-\u08ff]{3,}")
_GLYPH_WORD = re.compile("[\ufb50-\ufdff\ufe70-\ufefc]{2,}")
# Votes: 2 for a sure sign (a letter form that only ends or only starts a word), 1 for
# a likely one (the article "ال"; "لا" also ends words such as "أولا", "first"). A page
# reads backwards on two votes more than forwards; a line overrules its page on three.
_PAGE_MARGIN = 2
_LINE_MARGIN = 3
_MIRRORED = str.maketrans("()[]{}<>", ")(][}{><")


def has_rtl(text: str) -> bool:
    return _RTL_CHARS.search(text) is not None


def logical_order(text: str, glyph_pairs: Collection[int] = ()) -> str:
    """`text` (one PDF page) with its RTL lines in logical order. `glyph_pairs` holds
    each index i where characters i and i+1 were drawn by one glyph (a ligature)."""
    if not has_rtl(text):
        return text
    page_is_visual = _reads_backwards(text)
    out: list[str] = []
    position = 0
    for match in _LINE.finditer(text):
        start, end = match.span()
        out.append(text[position:start])  # the line break before this line
        position = end
        line = match.group()
        if has_rtl(line):
            visual = _line_reads_backwards(line, page_is_visual)
            line = _logical_line(line, start, glyph_pairs, visual)
        out.append(line)
    out.append(text[position:])
    return "".join(out)


def _logical_line(line: str, offset: int, glyph_pairs: Collection[int], visual: bool) -> str:
    units = _units(line, offset, glyph_pairs, visual)
    if visual:
        units = _restore_ltr_runs(units[::-1])
    return _PRESENTATION_FORMS.sub(_letters, "".join(units))


def _units(line: str, offset: int, glyph_pairs: Collection[int], visual: bool) -> list[str]:
    """The line's characters, a ligature's two kept together in the order that will
    read lam-then-alef once the line is in logical order."""
    units: list[str] = []
    index = 0
    while index < len(line):
        pair = line[index : index + 2]
        if offset + index in glyph_pairs and _is_lam_alef(pair):
            lam_alef = pair if pair[0] == _LAM else pair[::-1]
            units.append(lam_alef[::-1] if visual else lam_alef)
            index += 2
        else:
            units.append(line[index])
            index += 1
    return units


def _is_lam_alef(pair: str) -> bool:
    return len(pair) == 2 and _LAM in pair and bool(_ALEFS & set(pair))


def _restore_ltr_runs(units: list[str]) -> list[str]:
    """After reversing a line: turn its left-to-right runs (numbers, Latin words and
    the spaces or punctuation between them) the right way round again; mirror brackets
    in the RTL parts."""
    out: list[str] = []
    index = 0
    while index < len(units):
        if not _is_ltr(units[index]):
            out.append(units[index].translate(_MIRRORED))
            index += 1
            continue
        end = scan = index + 1
        numbers_only = _is_number(units[index])
        while scan < len(units) and not _is_rtl(units[scan]):
            if numbers_only and _is_ltr(units[scan]) and not _is_number(units[scan]):
                if scan > end:  # a number, spaces, then a word: two runs (UAX #9, N1)
                    break
                numbers_only = False
            if _is_ltr(units[scan]):
                end = scan + 1
            scan += 1
        out.extend(units[index:end][::-1])
        index = end
    return out


def _is_ltr(unit: str) -> bool:
    return unicodedata.bidirectional(unit[0]) in ("L", "EN", "AN")


def _is_number(unit: str) -> bool:
    return unicodedata.bidirectional(unit[0]) in ("EN", "AN")


def _is_rtl(unit: str) -> bool:
    return unicodedata.bidirectional(unit[0]) in ("R", "AL")


def _letters(match: re.Match[str]) -> str:
    return unicodedata.normalize("NFKC", match.group())


def _form(char: str) -> str:
    return unicodedata.decomposition(char).split(" ", 1)[0]


def _line_reads_backwards(line: str, page_is_visual: bool) -> bool:
    """A line decides for itself only on clear evidence, else follows its page."""
    logical, visual = _votes(line)
    if abs(logical - visual) >= _LINE_MARGIN:
        return visual > logical
    return page_is_visual


def _reads_backwards(text: str) -> bool:
    logical, visual = _votes(text)
    return visual - logical >= _PAGE_MARGIN


def _votes(text: str) -> tuple[int, int]:
    """Words that only read right in logical order, and words that only read right
    reversed: a Hebrew final letter ends a word; Arabic words start with the article
    "ال" and end with ة or ى, never the other way round; an Arabic glyph code in its
    initial form starts a word, one in its final form ends it."""
    logical = visual = 0
    for word in _GLYPH_WORD.findall(text):  # glyph codes say where in a word they sit
        first, last = _form(word[0]), _form(word[-1])
        logical += 2 * (first == "<initial>" or last == "<final>")
        visual += 2 * (first == "<final>" or last == "<initial>")
    text = _PRESENTATION_FORMS.sub(_letters, text)
    for word in _WORD.findall(text):
        logical += 2 * (word[-1] in _HEBREW_FINALS or word[-1] in _ARABIC_WORD_END)
        logical += word.startswith("\u0627\u0644")
        visual += 2 * (word[0] in _HEBREW_FINALS or word[0] in _ARABIC_WORD_END)
        visual += word.endswith("\u0644\u0627")
    return logical, visual
