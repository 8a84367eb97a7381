"""Uploads: does the content look like what its name claims? (pure)

A cheap look at an upload's first bytes, so the API can refuse at once what the
parsers would only fail later, as a job.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from ingest.errors import ContentMismatch, UnsupportedFormat
from ingest.pipeline.filenames import SOURCE_LANGUAGES
from ingest.pipeline.parsers import SUPPORTED_EXTENSIONS

_ZIP = (b"PK\x03\x04",)
_OLE = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",)
_MAGIC: dict[str, tuple[bytes, ...]] = {
    ".pdf": (b"%PDF",),
    ".docx": _ZIP,
    ".pptx": _ZIP,
    ".xlsx": _ZIP,
    ".odt": _ZIP,
    ".ods": _ZIP,
    ".odp": _ZIP,
    ".epub": _ZIP,
    # An archive: a local file header, or the end record alone (an empty archive).
    ".zip": (b"PK\x03\x04", b"PK\x05\x06"),
    ".msg": _OLE,
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".tif": (b"II*\x00", b"MM\x00*"),
    ".tiff": (b"II*\x00", b"MM\x00*"),
    ".webp": (b"RIFF",),
}
_TEXT = {
    ".txt",
    ".md",
    ".markdown",
    ".mdx",
    ".rst",
    ".xml",
    ".rtf",
    ".csv",
    ".tsv",
    ".json",
    ".eml",
    ".html",
    ".htm",
    *SOURCE_LANGUAGES,
}
_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")


def check_upload(filename: str, head: bytes) -> None:
    """Refuse a type we do not parse, or bytes that plainly are not that type.

    Raises UnsupportedFormat or ContentMismatch; `head` is the start of the content.
    """
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
