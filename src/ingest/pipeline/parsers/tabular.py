"""Tabular and structured data: CSV rows and JSON values as labelled lines."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from ingest.errors import CorruptDocument
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.decoding import _decode_text
from ingest.pipeline.segments import Segment

# --- CSV ----------------------------------------------------------------------

_CSV_SNIFF_CHARS = 16384


def _parse_csv(data: bytes, budget: _TextBudget) -> list[Segment]:
    text = _decode_text(data, "a text file (.csv)")
    dialect, has_header = _sniff_csv(text)
    _allow_csv_fields_up_to(budget.max_chars)
    rows = csv.reader(io.StringIO(text, newline=""), dialect)
    header: list[str] | None = None
    lines: list[str] = []
    for row in rows:
        if has_header and header is None:
            header = [name.strip() for name in row]
            continue
        line = _csv_row_line(row, header)
        if line:
            lines.append(budget.take(line))
    if not lines and header:
        lines.append(" | ".join(name for name in header if name))
    return [Segment(text="\n".join(lines))]


def _sniff_csv(text: str) -> tuple[type[csv.Dialect] | csv.Dialect, bool]:
    # A bounded sample, cut at a line end: Sniffer's regexes get slow on big inputs.
    sample = text[:_CSV_SNIFF_CHARS]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    sniffer = csv.Sniffer()
    try:
        dialect: type[csv.Dialect] | csv.Dialect = sniffer.sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel  # one column, or too irregular to tell
    try:
        has_header = sniffer.has_header(sample)
    except csv.Error:
        has_header = False
    return dialect, has_header


def _allow_csv_fields_up_to(max_chars: int) -> None:
    """Raise the csv module's field-size cap (131072 by default) to our own text limit.

    The cap is process-wide; it is only ever raised, and our text limit still bounds
    every document.
    """
    wanted = min(max_chars, 2**31 - 1)
    if csv.field_size_limit() < wanted:
        csv.field_size_limit(wanted)


def _csv_row_line(row: list[str], header: list[str] | None) -> str:
    values = [value.strip() for value in row]
    if header is None:
        return " | ".join(value for value in values if value)
    pairs = []
    for index, value in enumerate(values):
        if value:
            name = header[index] if index < len(header) and header[index] else f"column {index + 1}"
            pairs.append(f"{name}: {value}")
    return "; ".join(pairs)


# --- JSON ---------------------------------------------------------------------


def _parse_json(data: bytes, budget: _TextBudget) -> list[Segment]:
    text = _decode_text(data, "a text file (.json)")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptDocument(
            f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise CorruptDocument("not valid JSON: nested too deeply") from exc
    lines = [budget.take(line) for line in _flatten_json(value)]
    return [Segment(text="\n".join(lines))]


def _flatten_json(value: object) -> Iterator[str]:
    """Yield "path.to.key: value" lines in document order (iterative: no recursion limit)."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            children = [
                (f"{path}.{key}" if path else str(key), child) for key, child in node.items()
            ]
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(f"{path}[{i}]", child) for i, child in enumerate(node)]))
        else:
            scalar = node if isinstance(node, str) else json.dumps(node)
            yield f"{path}: {scalar}" if path else scalar
