"""What a file's name says about its format, apart from the parsers: processes that
never parse (the API, `ingest add`, a search) ask it without loading any parser library."""

from __future__ import annotations

# Archives whose members become child documents (pipeline/containers.py).
ARCHIVE_EXTENSIONS: frozenset[str] = frozenset({".zip"})


def extension_of(filename: str) -> str:
    # Not PurePath.suffix: it treats ".txt" as a hidden file without extension.
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[1].lower() if "." in name else ""
