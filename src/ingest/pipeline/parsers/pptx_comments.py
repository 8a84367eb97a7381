"""PPTX comments, which python-pptx does not load.

Each slide relates its comments part: classic comments (PowerPoint 2007-2019,
`p:cmLst` of `p:cm` with a plain `p:text`) or modern ones (PowerPoint 365,
`p188:cmLst` of `p188:cm` with a rich `p188:txBody` and threaded replies).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import defusedxml.ElementTree

_P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_P188 = "{http://schemas.microsoft.com/office/powerpoint/2018/8/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


def pptx_comment_lines(slide: Any) -> Iterator[str]:
    """The slide's comments as `[Comment: text]`, each followed by its replies."""
    for rel in slide.part.rels.values():
        if rel.is_external or not rel.reltype.endswith("/comments"):
            continue
        root = defusedxml.ElementTree.fromstring(rel.target_part.blob, forbid_dtd=True)
        for comment in root:
            for text in _thread(comment):
                if text:
                    yield f"[Comment: {text}]"


def _thread(comment: Any) -> Iterator[str]:
    classic = comment.find(f"{_P}text")
    if classic is not None:
        yield _squash(classic.text or "")
    yield _rich(comment.find(f"{_P188}txBody"))
    for reply in comment.iterfind(f"{_P188}replyLst/{_P188}reply"):
        yield _rich(reply.find(f"{_P188}txBody"))


def _rich(body: Any) -> str:
    if body is None:
        return ""
    return _squash("".join(t.text or "" for t in body.iter(f"{_A}t")))


def _squash(text: str) -> str:
    return " ".join(text.split())
