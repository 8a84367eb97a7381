"""What a file's name says about its format, apart from the parsers: processes that
never parse (the API, `ingest add`, a search) ask it without loading any parser library."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Archives whose members become child documents (pipeline/containers.py).
ARCHIVE_EXTENSIONS: frozenset[str] = frozenset({".zip"})


def extension_of(filename: str) -> str:
    # Not PurePath.suffix: it treats ".txt" as a hidden file without extension.
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[1].lower() if "." in name else ""


# Source code read as text (parsers/code.py): extension -> language, shown in each
# chunk's heading and recorded in the document's metadata as `code_language`.
SOURCE_LANGUAGES: dict[str, str] = {
    ".py": "Python",
    ".js": "JavaScript",
    ".mjs": "JavaScript",
    ".jsx": "JavaScript",
    ".ts": "TypeScript",
    ".tsx": "TypeScript",
    ".go": "Go",
    ".java": "Java",
    ".kt": "Kotlin",
    ".scala": "Scala",
    ".sql": "SQL",
    ".rb": "Ruby",
    ".rs": "Rust",
    ".c": "C",
    ".h": "C",
    ".cpp": "C++",
    ".cc": "C++",
    ".hpp": "C++",
    ".cs": "C#",
    ".php": "PHP",
    ".swift": "Swift",
    ".sh": "Shell",
    ".bash": "Shell",
    ".ps1": "PowerShell",
    ".r": "R",
    ".lua": "Lua",
    ".yaml": "YAML",
    ".yml": "YAML",
    ".toml": "TOML",
    ".ini": "INI",
    ".cfg": "INI",
    ".css": "CSS",
}


def recorded_metadata(metadata: Mapping[str, Any] | None, filename: str) -> dict[str, Any]:
    """A document's metadata: the user's, and what ingest records itself from the file's
    name (models.RESERVED_METADATA_KEYS): `filename`, and a source file's `code_language`
    (`--filter code_language=Python`)."""
    recorded = {**(metadata or {}), "filename": filename}
    language = SOURCE_LANGUAGES.get(extension_of(filename))
    if language is not None:
        recorded["code_language"] = language
    return recorded
