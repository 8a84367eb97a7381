"""Source code and configuration files: kept as text, the language named in the heading.

The heading ("Python source") reaches each chunk and a search hit; the document's
metadata holds the language too (`code_language`, pipeline/filenames.py), to filter on.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.pipeline.filenames import SOURCE_LANGUAGES
from ingest.pipeline.parsers.budget import _TextBudget
from ingest.pipeline.parsers.decoding import _decode_text
from ingest.pipeline.segments import Segment


def source_parser(extension: str) -> Callable[[bytes, _TextBudget], list[Segment]]:
    """The parser for one source extension: the whole file, headed by its language."""
    language = SOURCE_LANGUAGES[extension]

    def parse_source(data: bytes, budget: _TextBudget) -> list[Segment]:
        text = budget.take(_decode_text(data, f"a source file ({extension})"))
        return [Segment(text=text, heading=f"{language} source")]

    return parse_source
