"""Charts in DOCX and PPTX (DrawingML chart parts): the title and the data labels.

A chart is drawn from its part's XML, whose caches hold the values the labels show
(the embedded workbook is not needed). The text of a chart, as `[Chart: ...]`:

    [Chart: Sales by region; Sales: North 120, South Record low]

the title, then one `series: points` run per series whose data labels are shown.
A point is written as its category and its label (the value, the category or the
series name, as the chart's `c:showVal`/`c:showCatName`/`c:showSerName` flags say,
or a label's own typed text). Series without labels are left out: their values are
bars, not words, and a chart of 10,000 points would drown the document's text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import defusedxml.ElementTree

_C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
# The parts of a point's label, in the order the chart draws them.
_LABEL_FLAGS = ("showSerName", "showCatName", "showVal")


def chart_text(chart_xml: bytes) -> str:
    """A chart part's title and data labels, `; `-separated ("" when it has neither)."""
    root = defusedxml.ElementTree.fromstring(chart_xml, forbid_dtd=True)
    chart = root.find(f"{_C}chart")
    if chart is None:
        return ""
    parts = [_title(chart), *_labelled_series(chart)]
    return "; ".join(part for part in parts if part)


def _title(chart: Any) -> str:
    """Rich text, or the cached value of a cell reference."""
    title = chart.find(f"{_C}title")
    if title is None:
        return ""
    texts = [t.text or "" for t in title.iter(f"{_A}t")] or [
        v.text or "" for v in title.iter(f"{_C}v")
    ]
    return _squash("".join(texts))


def _labelled_series(chart: Any) -> Iterator[str]:
    plot_area = chart.find(f"{_C}plotArea")
    if plot_area is None:
        return
    for group in plot_area:  # c:barChart, c:lineChart, c:pieChart, ...
        for series in group.findall(f"{_C}ser"):
            # A series' own c:dLbls replaces its chart group's whole.
            labels = series.find(f"{_C}dLbls")
            if labels is None:
                labels = group.find(f"{_C}dLbls")
            if labels is None or _on(labels, "delete"):
                continue
            name = _cached(series.find(f"{_C}tx")).get(0, "")
            points = list(_point_labels(series, labels, name))
            if points:
                yield f"{name}: {', '.join(points)}" if name else ", ".join(points)


def _point_labels(series: Any, labels: Any, name: str) -> Iterator[str]:
    """Each point's label, preceded by its category when the label does not show it."""
    categories = _cached(series.find(f"{_C}cat"))
    values = _cached(series.find(f"{_C}val")) or _cached(series.find(f"{_C}yVal"))
    own = {_index(label): label for label in labels.findall(f"{_C}dLbl")}
    for index in sorted(set(values) | set(own)):
        label = own.get(index, labels)
        if _on(label, "delete"):
            continue
        category = categories.get(index, "")
        shown = {"showSerName": name, "showCatName": category, "showVal": values.get(index, "")}
        rich = [t.text or "" for t in label.findall(f"{_C}tx/{_C}rich//{_A}t")]
        text = (
            _squash("".join(rich))
            if rich
            else " ".join(shown[flag] for flag in _LABEL_FLAGS if _on(label, flag) and shown[flag])
        )
        if text:
            yield text if not category or category in text else f"{category} {text}"


def _cached(reference: Any) -> dict[int, str]:
    """Point index -> text, from a c:tx, c:cat or c:val's string, number or literal cache."""
    if reference is None:
        return {}
    direct = reference.find(f"{_C}v")  # a series name typed in, not referenced
    if direct is not None:
        return {0: _squash(direct.text or "")}
    return {
        _number(point.get("idx")): _squash(point.findtext(f"{_C}v") or "")
        for point in reference.iter(f"{_C}pt")
    }


def _index(label: Any) -> int:
    index = label.find(f"{_C}idx")
    return _number(index.get("val")) if index is not None else -1


def _number(text: str | None) -> int:
    """A point index; -1 for a missing or malformed one (matches no point's label)."""
    try:
        return int(text or "")
    except ValueError:
        return -1


def _on(element: Any, flag: str) -> bool:
    """An OOXML boolean child (`<c:showVal val="1"/>`); an absent `val` means true."""
    child = element.find(f"{_C}{flag}")
    return child is not None and child.get("val", "1") in ("1", "true")


def _squash(text: str) -> str:
    return " ".join(text.split())
