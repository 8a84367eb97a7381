"""Bytes that should be text -> str: byte-order marks, UTF-8, declared charsets, guessing."""

from __future__ import annotations

import codecs
import re

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
