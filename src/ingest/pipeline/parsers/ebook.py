"""EPUB: a zip of XHTML chapters, read in spine order through the HTML path."""

from __future__ import annotations

import io
import posixpath
import zipfile
from xml.etree.ElementTree import Element

import defusedxml.ElementTree

from ingest.errors import CorruptDocument
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.html import _decode_html, _html_to_markdown
from ingest.pipeline.parsers.office import _check_office_container
from ingest.pipeline.parsers.text import _split_markdown
from ingest.pipeline.segments import Segment

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_XHTML_TYPES = {"application/xhtml+xml", "text/html"}


def _parse_epub(data: bytes, budget: _TextBudget) -> list[Segment]:
    _check_office_container(data, "EPUB", ".mobi")
    segments: list[Segment] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in _epub_chapters(archive):
            html = _decode_html(archive.read(name), f"the EPUB chapter {name}")
            segments.extend(_split_markdown(budget.take(_html_to_markdown(html))))
    return segments


def _epub_chapters(archive: zipfile.ZipFile) -> list[str]:
    """The XHTML files in reading (spine) order, as paths inside the archive."""
    package_path = _epub_package_path(archive)
    package = _read_xml(archive, package_path)
    base = posixpath.dirname(package_path)
    manifest = {
        item.get("id"): item
        for item in package.iter(f"{_OPF}item")
        if item.get("media-type") in _XHTML_TYPES
    }
    chapters = []
    for ref in package.iter(f"{_OPF}itemref"):
        item = manifest.get(ref.get("idref"))
        href = item.get("href") if item is not None else None
        if href:
            chapters.append(posixpath.normpath(posixpath.join(base, href.split("#")[0])))
    names = set(archive.namelist())
    return [chapter for chapter in chapters if chapter in names]


def _epub_package_path(archive: zipfile.ZipFile) -> str:
    try:
        container = _read_xml(archive, "META-INF/container.xml")
    except KeyError:
        raise CorruptDocument("not a valid EPUB file: it has no META-INF/container.xml") from None
    rootfile = container.find(f".//{_CONTAINER}rootfile")
    path = rootfile.get("full-path") if rootfile is not None else None
    if not path:
        raise CorruptDocument("not a valid EPUB file: container.xml names no package file")
    return path


def _read_xml(archive: zipfile.ZipFile, name: str) -> Element:
    root: Element = defusedxml.ElementTree.fromstring(archive.read(name), forbid_dtd=True)
    return root
