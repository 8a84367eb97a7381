"""Tables as Markdown, so rows and columns survive into the chunk text."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-style Markdown table; the first row is the header.

    Empty rows are dropped, short rows padded; "|" and line breaks inside a cell
    are escaped so they cannot break the table's shape.
    """
    cleaned = [_trimmed([_cell(value) for value in row]) for row in rows]
    cleaned = [row for row in cleaned if row]
    if not cleaned:
        return ""
    width = max(len(row) for row in cleaned)
    padded = [row + [""] * (width - len(row)) for row in cleaned]
    header, *body = padded
    lines = [_row(header), _row(["---"] * width)]
    lines.extend(_row(row) for row in body)
    return "\n".join(lines)


def _trimmed(row: list[str]) -> list[str]:
    """Without trailing empty cells: a sheet's used range is often far wider than its data."""
    while row and not row[-1]:
        row.pop()
    return row


def _cell(value: str) -> str:
    return " ".join(value.split()).replace("|", "\\|")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
