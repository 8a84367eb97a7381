"""Which files an `ingest add PATH...` run covers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ingest.errors import IngestError
from ingest.settings import Settings
from ingest.store.engine import sqlite_file_of

# SQLite's companions of a database file: write-ahead log, shared memory, rollback journal.
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def discover_files(paths: Sequence[Path], *, own: Sequence[Path] = ()) -> list[Path]:
    """Every regular file under the given paths, resolved, sorted, without duplicates.

    Hidden files and folders (".git", ".DS_Store") are skipped: they are never
    documents a user meant to index. So are `own` files and folders (ingest's own
    database, staging folder and model cache: `own_paths`) found by walking a
    folder: `ingest add .` next to ./ingest.db must not try to ingest it. A path
    named on its own is always taken."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise IngestError(f"no such file or directory: {', '.join(missing)}")
    skip = [p.resolve() for p in own]
    found: set[Path] = set()
    for root in paths:
        found.update(_files_under(root.resolve(), skip))
    return sorted(found)


def own_paths(settings: Settings) -> list[Path]:
    """The files and folders ingest itself writes, given its settings."""
    paths = [settings.incoming_dir]
    if settings.model_cache_dir is not None:
        paths.append(settings.model_cache_dir)
    database = sqlite_file_of(settings.database_url)
    if database is not None:
        paths.append(database)
        paths.extend(database.with_name(database.name + s) for s in _SQLITE_COMPANIONS)
    return paths


def _files_under(root: Path, skip: Sequence[Path]) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for path in root.rglob("*"):
        if path.is_file() and not _is_hidden(path.relative_to(root)) and not _is_own(path, skip):
            yield path


def _is_own(path: Path, skip: Sequence[Path]) -> bool:
    return any(path == own or own in path.parents for own in skip)


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def is_under_roots(source: str, roots: Sequence[Path]) -> bool:
    """True when `source` is one of the roots or lies inside a root folder."""
    path = Path(source)
    return any(path == root or root in path.parents for root in roots)
