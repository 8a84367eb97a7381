"""Bytes that should be text -> str: byte-order marks, UTF-8, declared charsets, guessing."""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections import Counter

import charset_normalizer

from ingest.errors import CorruptDocument

_BINARY_SNIFF_BYTES = 8192

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
    charset the container declares (HTML meta, MIME); charset_normalizer's guess,
    weighed against Windows-1252 and -1250 when it reads as Latin script.
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
    guess = str(best)
    if _reads_as_latin(guess):
        return _likeliest_latin_reading(data, guess)
    if _mostly_ascii_letters(guess):
        # A short Western text is sometimes guessed as Big5 or an Arabic code page
        # ("très bien" read as "tr鋊 bien"): its few high bytes are all the detector
        # has to go on. Most of its letters are plain ASCII, though, which Cyrillic,
        # Greek or CJK text seldom is; a Windows reading takes over only if one
        # alphabet holds every accented letter it yields.
        return _flawless_latin_reading(data) or guess
    return guess  # Cyrillic, Greek, CJK...: telling scripts apart is what it does well


# --- which Latin code page -----------------------------------------------------

# charset_normalizer tells scripts apart well but not the Latin code pages from one
# another: it scores Western text in Windows-1252 exactly as high as its Windows-1250
# reading and keeps the first by name, so "très niño João" was stored as "trčs nińo
# Joăo" (and Czech in Windows-1250 sometimes came out as Windows-1258). These two
# Windows code pages carry nearly all legacy Latin text, so a Latin guess is weighed
# against both; ties go to Windows-1252, the most common one and what browsers
# assume for an unlabelled page.

# The accented letters of the European languages those code pages serve (plus the
# Baltic and Turkish ones, for guesses in their code pages; "º ª" are ordinals, 1º
# 2ª). A text is written in one language, or mostly in one: a wrong code page
# scatters its accented letters over several alphabets (č from Czech, ń from Polish,
# ă from Romanian) or turns them into symbols stuck to words (Polish "łódź" read as
# Windows-1252 is "³ódŸ").
_ALPHABETS: dict[str, frozenset[str]] = {
    name: frozenset(letters)
    for name, letters in {
        "French": "àâæçéèêëîïôœùûüÿ",
        "Spanish": "áéíñóúüºª",
        "Portuguese": "áâãàçéêíóôõúºª",
        "Italian": "àèéìíîòóùúºª",
        "Catalan": "àçèéíïòóúüºª",
        "German": "äöüß",
        "Dutch": "áäéèëíïóöúü",
        "Danish and Norwegian": "æøåéèêóòô",
        "Swedish": "åäöé",
        "Finnish": "åäöšž",
        "Icelandic": "áðéíóúýþæö",
        "Faroese": "áðíóúýæø",
        "Czech": "áčďéěíňóřšťúůýž",
        "Slovak": "áäčďéíĺľňóôŕšťúýž",
        "Polish": "ąćęłńóśźż",
        "Hungarian": "áéíóöőúüű",
        "Croatian and Slovene": "čćđšž",
        "Romanian": "ăâîșşțţ",
        "Albanian": "çë",
        "Lithuanian": "ąčęėįšųūž",
        "Latvian": "āčēģīķļņšūž",
        "Estonian": "äöõüšž",
        "Turkish": "çğıİöşü",
    }.items()
}
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ASCII_LETTERS = re.compile(r"[A-Za-z]")
_ASCII_SAMPLE_CHARS = 65536
# Enough accented characters to judge a reading by; a long document is not scanned whole.
_MAX_MARKS = 10_000


def _likeliest_latin_reading(data: bytes, guess: str) -> str:
    """Of the guess and the Windows-1252/1250 readings, the one that fits one alphabet best."""
    readings = [_strict(data, "cp1252"), guess, _strict(data, "cp1250")]
    # max() keeps the first of equals: Windows-1252, then the guess.
    return max((reading for reading in readings if reading is not None), key=_alphabet_fit)


def _flawless_latin_reading(data: bytes) -> str | None:
    """The Windows-1252, else Windows-1250, reading if one alphabet holds all its accents."""
    for encoding in ("cp1252", "cp1250"):
        reading = _strict(data, encoding)
        if reading is not None and _alphabet_fit(reading) == 1.0:
            return reading
    return None


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _reads_as_latin(text: str) -> bool:
    """Whether most non-ASCII letters are Latin ones (é, ł), not Cyrillic, Greek, CJK..."""
    latin = other = 0
    for seen, match in enumerate(_NON_ASCII.finditer(text)):
        if seen >= _MAX_MARKS:
            break
        char = match.group()
        if char.isalpha():
            if unicodedata.name(char, "").startswith("LATIN "):
                latin += 1
            else:
                other += 1
    return latin >= other


def _mostly_ascii_letters(text: str) -> bool:
    """Whether plain ASCII letters outnumber all others (in the first part of the text)."""
    sample = text[:_ASCII_SAMPLE_CHARS]
    ascii_letters = len(_ASCII_LETTERS.findall(sample))
    other_letters = sum(1 for match in _NON_ASCII.finditer(sample) if match.group().isalpha())
    return ascii_letters > other_letters


def _alphabet_fit(text: str) -> float:
    """The share of the text's accented letters that the best-fitting single alphabet holds.

    Symbols stuck to a letter (superscripts, spacing accents, controls, combining
    marks: what a wrong code page makes of letters) count as letters no alphabet holds.
    """
    letters, strays = _accented_marks(text)
    total = letters.total() + strays
    if not total:
        return 1.0
    best = max(
        sum(count for letter, count in letters.items() if letter in alphabet)
        for alphabet in _ALPHABETS.values()
    )
    return best / total


def _accented_marks(text: str) -> tuple[Counter[str], int]:
    """Counts of the non-ASCII letters (lower-cased), and of the symbols stuck to a letter."""
    letters: Counter[str] = Counter()
    strays = 0
    for seen, match in enumerate(_NON_ASCII.finditer(text)):
        if seen >= _MAX_MARKS:
            break
        char, at = match.group(), match.start()
        if char.isalpha():
            lower = char.lower()
            letters[lower if len(lower) == 1 else char] += 1  # "İ".lower() is two characters
        elif unicodedata.category(char)[0] in "SNCM" and (
            (at > 0 and text[at - 1].isalpha()) or text[at + 1 : at + 2].isalpha()
        ):
            strays += 1
    return letters, strays
