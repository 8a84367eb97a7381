"""The parsers' version, apart from the parsers: the pipeline's fingerprint needs it in
every process that ingests, the parser libraries only the process that parses (a child
of the worker when parsing is isolated)."""

from __future__ import annotations

# Bump whenever the text or the segmentation produced for the same file changes:
# it is part of the pipeline fingerprint, so stored documents get re-parsed.
PARSER_VERSION = "4"
