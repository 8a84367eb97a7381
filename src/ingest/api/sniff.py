"""Uploads: does the content look like what its name claims? (pure)"""

from __future__ import annotations

from pathlib import PurePosixPath

from ingest.errors import ContentMismatch, UnsupportedFormat
from ingest.pipeline.parsers import SUPPORTED_EXTENSIONS

_ZIP = (b"PK\x03\x04",)
_MAGIC: dict[str, tuple[bytes, ...]] = {
    ".pdf": (b"%PDF",),
    ".docx": _ZIP,
    ".pptx": _ZIP,
    ".xlsx": _ZIP,
}
_TEXT = {".txt", ".md", ".markdown", ".csv", ".json", ".eml", ".html", ".htm"}
_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")


def check_upload(filename: str, head: bytes) -> None:
    """Refuse a type we do not parse, or bytes that plainly are not that type."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise UnsupportedFormat(
            f"{filename}: '{suffix or 'no extension'}' is not a supported type; "
            f"supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}"
        )
    if not head:
        return  # empty files are accepted and fail as a job with a clear reason
    magic = _MAGIC.get(suffix)
    if magic and not head.startswith(magic):
        raise ContentMismatch(f"{filename}: the content is not a {suffix[1:].upper()} file")
    if suffix in _TEXT and b"\x00" in head and not head.startswith(_BOMS):
        raise ContentMismatch(f"{filename}: binary content in a text file")
