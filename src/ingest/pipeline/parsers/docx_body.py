"""DOCX body: every piece of text a reader sees, in reading order.

python-docx's own views lose text: `document.paragraphs` skips tables, block
`iter_inner_content()` skips content controls (`w:sdt`), and `Paragraph.text`
skips inline content controls, equations, comments and charts. This walks
the body XML itself. The text of headers and footers stays out on purpose: it repeats
boilerplate on every page; their pictures, when read by OCR, come in (a scan placed
in the header, behind the page, is the page).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import defusedxml.ElementTree
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml.ns import qn

from ingest.pipeline.parsers.charts import chart_text
from ingest.pipeline.parsers.tables import markdown_table

_M = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"
_C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_R_EMBED = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}embed"
# A VML picture (`w:pict`, `w:object`; pre-2010 Word): v:imagedata names its image.
_V_IMAGEDATA = "{urn:schemas-microsoft-com:vml}imagedata"
_O_RELID = "{urn:schemas-microsoft-com:office:office}relid"
# Word stores each text box twice: DrawingML (mc:Choice) and a VML copy (mc:Fallback).
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_W = {name: qn(f"w:{name}") for name in (
    "p", "tbl", "tr", "tc", "sdt", "sdtContent", "sdtPr", "customXml", "t", "tab", "br",
    "cr", "delText", "instrText", "del", "txbxContent", "commentReference", "rPr", "pPr",
    "footnoteReference", "endnoteReference", "footnote", "endnote", "numPr", "numId", "ilvl",
)}  # fmt: skip
_HEADING_STYLE = re.compile(r"heading ([1-9])|(title)", re.I)

Block = tuple[int | None, str]  # (heading level, or None for body text; the text)


class DocxBody:
    """Reads a python-docx Document's body as (heading level, text) blocks."""

    def __init__(self, document: Any, read_picture: Callable[[bytes], str] | None = None) -> None:
        """`read_picture`, if given, turns a picture's image bytes into text (OCR)."""
        self._document = document
        self._part = document.part
        self._read_picture = read_picture
        self._comments = _comment_texts(document)
        self._notes = {
            "footnote": _note_texts(document.part, "footnotes", _W["footnote"]),
            "endnote": _note_texts(document.part, "endnotes", _W["endnote"]),
        }
        # By w:pStyle id: python-docx finds a style by a scan of all styles, per call.
        self._styles: dict[str | None, Any] = {}
        self._style_numbering: dict[str | None, Any] = {}

    def blocks(self) -> Iterator[Block]:
        return self._blocks(self._document.element.body)

    def _blocks(self, container: Any) -> Iterator[Block]:
        for child in container.iterchildren():
            if child.tag == _W["p"]:
                level, text = self._heading_level(child), self._paragraph_text(child)
                depth = self._list_depth(child) if level is None and text.strip() else None
                yield level, text if depth is None else f"{'  ' * depth}- {text}"
            elif child.tag == _W["tbl"]:
                yield from self._table_blocks(child)
            elif child.tag in (_W["sdt"], _W["sdtContent"], _W["customXml"]):
                yield from self._blocks(child)  # a content control: its content is body text

    def _list_depth(self, p: Any) -> int | None:
        """A bulleted or numbered paragraph's nesting level (0 at the top), else None:
        numbering set on the paragraph, or by its style ("List Bullet"). Items are
        marked `- `, bullets and numbers alike: the numbers Word shows are computed
        from numbering.xml, and the items' order says as much."""
        num_pr = _num_pr(p)
        if num_pr is None:
            num_pr = self._numbering_of_style(p.style)
        if num_pr is None:
            return None
        num_id, level = num_pr.find(_W["numId"]), num_pr.find(_W["ilvl"])
        if num_id is not None and num_id.get(qn("w:val")) == "0":
            return None  # numbering switched off for this paragraph
        return int(level.get(qn("w:val"), "0")) if level is not None and _is_int(level) else 0

    def _numbering_of_style(self, style_id: str | None) -> Any:
        """The numbering a paragraph style gives, its own or inherited (w:basedOn)."""
        if style_id not in self._style_numbering:
            style, num_pr = self._style(style_id), None
            for _ in range(_MAX_STYLE_DEPTH):  # a malformed file may chain styles in a loop
                if style is None or num_pr is not None:
                    break
                num_pr, style = _num_pr(style.element), style.base_style
            self._style_numbering[style_id] = num_pr
        return self._style_numbering[style_id]

    def _style(self, style_id: str | None) -> Any:
        if style_id not in self._styles:
            self._styles[style_id] = self._part.get_style(style_id, WD_STYLE_TYPE.PARAGRAPH)
        return self._styles[style_id]

    def _heading_level(self, p: Any) -> int | None:
        style = self._style(p.style)
        match = _HEADING_STYLE.fullmatch(style.name.strip()) if style and style.name else None
        if match is None:
            return None
        return int(match.group(1)) if match.group(1) else 0  # "Title" sits above Heading 1

    def _paragraph_text(self, p: Any) -> str:
        parts: list[str] = []
        boxes: list[Any] = []
        self._inline(p, parts, boxes)
        lines = ["".join(parts)]
        for box in boxes:  # text boxes anchored here follow the paragraph's own text
            lines.extend(text for _, text in self._blocks(box))
        return "\n".join(line for line in lines if line.strip())

    def _inline(self, element: Any, parts: list[str], boxes: list[Any]) -> None:
        for child in element.iterchildren():
            tag = child.tag
            if tag == _W["t"]:
                parts.append(child.text or "")
            elif tag == _W["tab"]:
                parts.append("\t")
            elif tag in (_W["br"], _W["cr"]):
                parts.append("\n")
            elif tag in (_W["del"], _W["delText"], _W["instrText"], _W["rPr"], _W["pPr"]):
                continue  # deleted revisions, field codes and formatting are not text
            elif tag in (_W["sdtPr"], _MC_FALLBACK):
                continue
            elif tag == _W["txbxContent"]:
                boxes.append(child)
            elif tag == _W["commentReference"]:
                comment = self._comments.get(child.get(qn("w:id")), "")
                if comment:
                    parts.append(f" [Comment: {comment}]")
            elif tag in (_W["footnoteReference"], _W["endnoteReference"]):
                kind = "footnote" if tag == _W["footnoteReference"] else "endnote"
                note = self._notes[kind].get(child.get(qn("w:id")) or "", "")
                if note:
                    parts.append(f" [{kind.capitalize()}: {note}]")
            elif tag in (f"{_M}oMath", f"{_M}oMathPara"):
                parts.append(omml_linear(child))
            elif tag == f"{_C}chart":
                chart = self._chart_text(child.get(_R_ID))
                if chart:
                    parts.append(f" [Chart: {chart}]")
            elif tag in (f"{_A}blip", _V_IMAGEDATA) and self._read_picture is not None:
                text = self._picture_text(self._part, child)
                if text:
                    parts.append(f"\n{text}\n")
            elif isinstance(tag, str):
                self._inline(child, parts, boxes)

    def margin_blocks(self, kind: str) -> Iterator[Block]:
        """The pictures of the headers (`kind` "header") or footers ("footer") of every
        section, read, one block each: their text is left out, as boilerplate."""
        if self._read_picture is None:
            return
        seen: set[str] = set()
        for part in _margin_parts(self._part, kind):
            for element in _pictures_in(part.element):
                text = self._picture_text(part, element)
                if text and text not in seen:  # one logo in the first-page and other headers
                    seen.add(text)
                    yield None, text

    def _picture_text(self, part: Any, element: Any) -> str:
        assert self._read_picture is not None
        blob = _image_blob(part, _picture_rid(element))
        return self._read_picture(blob) if blob else ""

    def _table_blocks(self, tbl: Any) -> Iterator[Block]:
        """The table as Markdown; nested tables follow it as tables of their own."""
        rows: list[list[str]] = []
        nested: list[Any] = []
        for tr in tbl.iterchildren(_W["tr"]):
            cells = []
            for tc in tr.iterchildren(_W["tc"]):
                texts = list(self._cell_texts(tc, nested))
                cells.append(" ".join(t.strip() for t in texts if t.strip()))
            rows.append(cells)
        yield None, markdown_table(rows)
        for inner in nested:
            yield from self._table_blocks(inner)

    def _cell_texts(self, container: Any, nested: list[Any]) -> Iterator[str]:
        for child in container.iterchildren():
            if child.tag == _W["p"]:
                yield self._paragraph_text(child)
            elif child.tag == _W["tbl"]:
                nested.append(child)
            elif child.tag in (_W["sdt"], _W["sdtContent"], _W["customXml"]):
                yield from self._cell_texts(child, nested)

    def _chart_text(self, rid: str | None) -> str:
        part = self._part.related_parts.get(rid) if rid else None
        return chart_text(part.blob) if part is not None else ""


# Word nests styles a few levels deep (Heading 2 on Heading 1 on Normal).
_MAX_STYLE_DEPTH = 20


def _is_int(element: Any) -> bool:
    return str(element.get(qn("w:val"), "0")).isdigit()


def _num_pr(element: Any) -> Any:
    """A paragraph's or a style's numbering properties (w:pPr/w:numPr), or None."""
    ppr = element.find(_W["pPr"])
    return ppr.find(_W["numPr"]) if ppr is not None else None


def docx_picture_ids(document: Any) -> list[str]:
    """The relationship ids of the pictures (DrawingML and VML) in the body, then in
    the headers and footers, in reading order."""
    elements = list(_pictures_in(document.element.body))
    for kind in ("header", "footer"):
        for part in _margin_parts(document.part, kind):
            elements.extend(_pictures_in(part.element))
    return [rid for element in elements if (rid := _picture_rid(element))]


def _pictures_in(root: Any) -> Iterator[Any]:
    """DrawingML blips and VML imagedata under `root`, but not the VML copy Word keeps
    of a DrawingML shape (mc:Fallback): that picture is counted once."""
    for element in root.iter(f"{_A}blip", _V_IMAGEDATA):
        if not any(a.tag == _MC_FALLBACK for a in element.iterancestors()):
            yield element


def _picture_rid(element: Any) -> str | None:
    if element.tag == _V_IMAGEDATA:
        rid: str | None = element.get(_R_ID) or element.get(_O_RELID)
        return rid
    embed: str | None = element.get(_R_EMBED)
    return embed


def _margin_parts(part: Any, kind: str) -> list[Any]:
    """The document's header (or footer) parts, each once (sections may share them)."""
    parts: dict[str, Any] = {}
    for rel in part.rels.values():
        if (
            rel.reltype.endswith(f"/{kind}")
            and not rel.is_external
            and hasattr(rel.target_part, "element")  # parsed XML, as python-docx loads them
        ):
            parts.setdefault(str(rel.target_part.partname), rel.target_part)
    return [parts[name] for name in sorted(parts)]


def _image_blob(part: Any, rid: str | None) -> bytes:
    """The bytes of an embedded image part; b"" for a linked (external) one."""
    rel = part.rels.get(rid) if rid else None
    if rel is None or rel.is_external:
        return b""
    return bytes(rel.target_part.blob)


def _comment_texts(document: Any) -> dict[str, str]:
    part = document.part
    if not any(rel.reltype.endswith("/comments") for rel in part.rels.values()):
        return {}  # `document.comments` would create an empty comments part
    return {
        str(comment.comment_id): " ".join(comment.text.split()) for comment in document.comments
    }


def _note_texts(part: Any, kind: str, note_tag: str) -> dict[str, str]:
    """Footnote or endnote id -> its text, from the part the document relates as `kind`."""
    related = [
        rel.target_part
        for rel in part.rels.values()
        if rel.reltype.endswith(f"/{kind}") and not rel.is_external
    ]
    if not related:
        return {}
    root = defusedxml.ElementTree.fromstring(related[0].blob, forbid_dtd=True)
    notes = {}
    for note in root.iter(note_tag):
        text = " ".join("".join(t.text or "" for t in note.iter(_W["t"])).split())
        if text:
            notes[note.get(qn("w:id")) or ""] = text
    return notes


# --- equations (OMML) as linear text ----------------------------------------------


def omml_linear(element: Any) -> str:
    """An Office Math element as linear text: fractions (a)/(b), powers x^(2), roots √(x)."""
    name = _local(element.tag)
    if name == "t":
        return str(element.text or "")
    if name.endswith("Pr"):
        return ""  # properties: formatting, not content
    children = [(_local(child.tag), omml_linear(child)) for child in element]
    parts = dict(children)
    if name == "f":
        return f"({parts.get('num', '')})/({parts.get('den', '')})"
    if name in ("sSup", "sSub", "sSubSup"):
        text = parts.get("e", "")
        text += f"_({parts['sub']})" if "sub" in parts else ""
        return text + (f"^({parts['sup']})" if "sup" in parts else "")
    if name == "rad":
        return f"√({parts.get('e', '')})"
    if name == "nary":
        symbol = element.find(f"{_M}naryPr/{_M}chr")
        text = symbol.get(f"{_M}val") if symbol is not None else "∫"
        text += f"_({parts['sub']})" if parts.get("sub") else ""
        text += f"^({parts['sup']})" if parts.get("sup") else ""
        return f"{text} {parts.get('e', '')}"
    if name == "d":
        return "(" + ", ".join(text for local, text in children if local == "e") + ")"
    return "".join(text for _, text in children)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
