"""The pipeline as one object: parse -> chunk -> embed, plus its fingerprint.

The fingerprint names everything that shapes the output (parser version,
chunker settings, embedding model); a document is re-processed when it changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from ingest.embedding.base import Embedder, Vectors
from ingest.errors import FileTooLarge
from ingest.pipeline.chunking import Chunk, Chunker, ChunkProgress
from ingest.pipeline.containers import Expansion, expand_container, is_container
from ingest.pipeline.filenames import extension_of
from ingest.pipeline.parse_progress import ParseProgressCallback
from ingest.pipeline.parser_version import FORMAT_VERSIONS, PARSER_VERSION
from ingest.pipeline.segments import ContainerLimits, ParseLimits, Segment

# Bump when what a container expands to changes: only containers (.zip, .eml, .msg)
# are processed again, not every document as a PARSER_VERSION bump would.
CONTAINER_VERSION = "1"


class Pipeline:
    def __init__(
        self,
        *,
        embedder: Embedder,
        chunker: Chunker,
        limits: ParseLimits,
        max_file_bytes: int,
        containers: ContainerLimits | None = None,
    ) -> None:
        self.embedder = embedder
        self.containers = containers or ContainerLimits(max_member_bytes=max_file_bytes)
        self.chunker = chunker
        self.limits = limits
        self.max_file_bytes = max_file_bytes
        self.fingerprint = _fingerprint(
            {
                "parser": PARSER_VERSION,
                "max_text_chars": limits.max_text_chars,
                "max_pages": limits.max_pages,
                "ocr": limits.ocr,
                "chunker": chunker.describe(),
                "model": embedder.model_id,
            }
        )

    def fingerprint_for(self, filename: str) -> str:
        """A container's fingerprint also names how its members are expanded; a format
        with a version of its own (FORMAT_VERSIONS) names it."""
        if is_container(filename):
            return _fingerprint({"pipeline": self.fingerprint, "containers": CONTAINER_VERSION})
        version = FORMAT_VERSIONS.get(extension_of(filename))
        if version is not None:
            return _fingerprint({"pipeline": self.fingerprint, "format": version})
        return self.fingerprint

    def check_size(self, size: int) -> None:
        if size > self.max_file_bytes:
            raise FileTooLarge(
                f"file is {size:,} bytes, over the limit of {self.max_file_bytes:,} bytes "
                "(INGEST_MAX_FILE_BYTES)"
            )

    def parse(
        self, data: bytes, filename: str, on_progress: ParseProgressCallback | None = None
    ) -> list[Segment]:
        self.check_size(len(data))
        # Imported here: with isolated parsing (the default) only the parser child
        # processes load the parser libraries, not every process that ingests.
        from ingest.pipeline.parsers import parse_document

        return parse_document(data, filename, self.limits, on_progress)

    def expand(self, data: bytes, filename: str, spill_dir: Path) -> Expansion:
        """A container's members, spilled under `spill_dir` (pipeline/containers.py)."""
        return expand_container(data, filename, self.containers, spill_dir)

    def chunk(
        self, segments: Sequence[Segment], on_window: ChunkProgress | None = None
    ) -> list[Chunk]:
        return self.chunker.chunk(segments, on_window)

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self.embedder.embed(texts)


def _fingerprint(parts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
