"""The parsers' version, apart from the parsers: the pipeline's fingerprint needs it in
every process that ingests, the parser libraries only the process that parses (a child
of the worker when parsing is isolated)."""

from __future__ import annotations

# Bump whenever the text or the segmentation produced for the same file changes:
# it is part of the pipeline fingerprint, so stored documents get re-parsed.
PARSER_VERSION = "4"

# Bump one format's entry when only that format's output changes: only its files are
# parsed again (a PARSER_VERSION bump re-parses, and re-OCRs, every document).
# .docx 1: pictures in VML (pre-2010 Word) and in headers and footers are read by OCR.
# .docx 2, .pptx 1: charts' data labels are kept with their titles; PPTX comments are kept;
# DOCX list items are marked `- `.
# .pdf 1: a page-sized scan whose text layer is only a stamp is read by OCR.
# .odt 1: list items are marked `- `.
FORMAT_VERSIONS: dict[str, str] = {".docx": "2", ".pptx": "1", ".pdf": "1", ".odt": "1"}
