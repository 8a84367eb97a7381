"""Which files an `ingest add PATH...` run covers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ingest.errors import IngestError


def discover_files(paths: Sequence[Path]) -> list[Path]:
    """Every regular file under the given paths, resolved, sorted, without duplicates.

    Hidden files and folders (".git", ".DS_Store") are skipped: they are never
    documents a user meant to index."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise IngestError(f"no such file or directory: {', '.join(missing)}")
    found: set[Path] = set()
    for root in paths:
        found.update(_files_under(root.resolve()))
    return sorted(found)


def _files_under(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for path in root.rglob("*"):
        if path.is_file() and not _is_hidden(path.relative_to(root)):
            yield path


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def is_under_roots(source: str, roots: Sequence[Path]) -> bool:
    """True when `source` is one of the roots or lies inside a root folder."""
    path = Path(source)
    return any(path == root or root in path.parents for root in roots)
