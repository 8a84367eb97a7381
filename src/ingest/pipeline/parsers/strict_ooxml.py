"""Strict Open XML (ISO/IEC 29500 Strict) read as Transitional.

Word, Excel and PowerPoint can save "Strict Open XML": the same parts under other
namespace URIs (http://purl.oclc.org/ooxml/...). python-docx, python-pptx and
openpyxl know only the Transitional URIs and report such a file as invalid, so
the package's XML parts are rewritten to the Transitional URIs before opening.
"""

from __future__ import annotations

import io
import re
import zipfile

_STRICT_MARK = b"http://purl.oclc.org/ooxml/"
_XML_PART = re.compile(r"(\.xml|\.rels|\.vml)$", re.I)

# Most URIs differ only by the host and a "/2006" step; a few were renamed.
_RENAMED: tuple[tuple[bytes, bytes], ...] = (
    (
        b"http://purl.oclc.org/ooxml/officeDocument/extendedProperties",
        b"http://schemas.openxmlformats.org/officeDocument/2006/extended-properties",
    ),
    (
        b"http://purl.oclc.org/ooxml/officeDocument/customProperties",
        b"http://schemas.openxmlformats.org/officeDocument/2006/custom-properties",
    ),
    (
        b"http://purl.oclc.org/ooxml/officeDocument/docPropsVTypes",
        b"http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes",
    ),
)
_FAMILY = re.compile(
    rb"http://purl\.oclc\.org/ooxml/"
    rb"(wordprocessingml|spreadsheetml|presentationml|drawingml|officeDocument)/"
)


def as_transitional(data: bytes) -> bytes:
    """The package unchanged when it is Transitional; else a copy with Transitional URIs."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        try:
            root_rels = archive.read("_rels/.rels")
        except KeyError:
            return data  # let the Office library report what is missing
        if _STRICT_MARK not in root_rels:
            return data
        output = io.BytesIO()
        with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as rewritten:
            for info in archive.infolist():
                content = archive.read(info)
                if _XML_PART.search(info.filename):
                    content = _rewrite_namespaces(content)
                rewritten.writestr(info.filename, content)
    return output.getvalue()


def _rewrite_namespaces(content: bytes) -> bytes:
    for strict, transitional in _RENAMED:
        content = content.replace(strict, transitional)
    content = _FAMILY.sub(rb"http://schemas.openxmlformats.org/\1/2006/", content)
    # Strict marks the conformance class; the Transitional readers do not expect it.
    return content.replace(b' conformance="strict"', b"")
