"""XLSX cell comments (notes), which openpyxl's read-only mode does not load.

Read straight from the package: workbook.xml names the sheets, the relationship
parts lead from each sheet to its comments part.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from xml.etree.ElementTree import Element

import defusedxml.ElementTree

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def xlsx_cell_comments(package: bytes) -> dict[str, list[str]]:
    """Sheet name -> ["[Comment B2: text]", ...] in the comments part's order."""
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        names = set(archive.namelist())
        if not any("comment" in name.lower() for name in names):
            return {}
        workbook = _xml(archive, "xl/workbook.xml")
        targets = _relationships(archive, "xl/workbook.xml", names)
        found: dict[str, list[str]] = {}
        for sheet in workbook.iter(f"{_MAIN}sheet"):
            sheet_path = targets.get(sheet.get(_R_ID, ""), ("", ""))[1]
            for kind, target in _relationships(archive, sheet_path, names).values():
                if kind.endswith("/comments") and target in names:
                    found.setdefault(sheet.get("name", ""), []).extend(
                        _comment_lines(_xml(archive, target))
                    )
        return found


def _comment_lines(comments: Element) -> list[str]:
    lines = []
    for comment in comments.iter(f"{_MAIN}comment"):
        text = " ".join("".join(t.text or "" for t in comment.iter(f"{_MAIN}t")).split())
        if text:
            lines.append(f"[Comment {comment.get('ref', '')}: {text}]")
    return lines


def _relationships(
    archive: zipfile.ZipFile, part: str, names: set[str]
) -> dict[str, tuple[str, str]]:
    """Relationship id -> (type, target part path), for the part at `part` (if it has any)."""
    folder, base = posixpath.split(part)
    rels_path = posixpath.join(folder, "_rels", f"{base}.rels")
    if not part or rels_path not in names:
        return {}
    targets = {}
    for rel in _xml(archive, rels_path).iter(f"{_REL}Relationship"):
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External" or not target:
            continue
        path = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
        targets[rel.get("Id", "")] = (rel.get("Type", ""), posixpath.normpath(path))
    return targets


def _xml(archive: zipfile.ZipFile, name: str) -> Element:
    root: Element = defusedxml.ElementTree.fromstring(archive.read(name), forbid_dtd=True)
    return root
