"""Source code and configuration files: kept as text, the language named in the heading.

Segments carry only text, a page and a heading (pipeline/segments.py); the heading
is what reaches each chunk and a search hit, so the language goes there
("Python source") rather than into a metadata field nothing downstream stores.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.decoding import _decode_text
from ingest.pipeline.segments import Segment

# extension -> language name shown in the heading
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


def source_parser(extension: str) -> Callable[[bytes, _TextBudget], list[Segment]]:
    """The parser for one source extension: the whole file, headed by its language."""
    language = SOURCE_LANGUAGES[extension]

    def parse_source(data: bytes, budget: _TextBudget) -> list[Segment]:
        text = budget.take(_decode_text(data, f"a source file ({extension})"))
        return [Segment(text=text, heading=f"{language} source")]

    return parse_source
