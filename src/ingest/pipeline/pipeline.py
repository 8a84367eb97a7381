"""The pipeline as one object: parse -> chunk -> embed, plus its fingerprint.

The fingerprint names everything that shapes the output (parser version,
chunker settings, embedding model); a document is re-processed when it changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from ingest.errors import ConfigError, FileTooLarge
from ingest.pipeline.chunking import Chunk, Chunker, load_tokenizer
from ingest.pipeline.embedders import Embedder, LocalEmbedder, OpenAIEmbedder, Vectors
from ingest.pipeline.parsers import PARSER_VERSION, parse_document
from ingest.pipeline.segments import ParseLimits, Segment
from ingest.settings import Settings


class Pipeline:
    def __init__(
        self,
        *,
        embedder: Embedder,
        chunker: Chunker,
        limits: ParseLimits,
        max_file_bytes: int,
    ) -> None:
        self.embedder = embedder
        self.chunker = chunker
        self.limits = limits
        self.max_file_bytes = max_file_bytes
        self.fingerprint = _fingerprint(
            {
                "parser": PARSER_VERSION,
                "max_text_chars": limits.max_text_chars,
                "chunker": chunker.describe(),
                "model": embedder.model_id,
            }
        )

    def check_size(self, size: int) -> None:
        if size > self.max_file_bytes:
            raise FileTooLarge(
                f"file is {size:,} bytes, over the limit of {self.max_file_bytes:,} bytes "
                "(INGEST_MAX_FILE_BYTES)"
            )

    def parse(self, data: bytes, filename: str) -> list[Segment]:
        self.check_size(len(data))
        return parse_document(data, filename, self.limits)

    def chunk(self, segments: Sequence[Segment]) -> list[Chunk]:
        return self.chunker.chunk(segments)

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self.embedder.embed(texts)


def _fingerprint(parts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def build_embedder(settings: Settings) -> LocalEmbedder | OpenAIEmbedder:
    if settings.embedder == "openai":
        if not settings.embedding_url:
            raise ConfigError("INGEST_EMBEDDER=openai needs INGEST_EMBEDDING_URL")
        key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
        return OpenAIEmbedder(
            url=settings.embedding_url,
            model=settings.embedding_model,
            api_key=key,
            dimensions=settings.embedding_dimensions,
            timeout_s=settings.embedding_timeout_s,
            attempts=settings.embedding_attempts,
        )
    return LocalEmbedder(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        threads=settings.embedding_threads,
    )


def build_pipeline(settings: Settings, embedder: Embedder | None = None) -> Pipeline:
    concrete = embedder or build_embedder(settings)
    tokenizer_path = Path(settings.tokenizer) if settings.tokenizer else concrete.tokenizer_path
    max_tokens = min(settings.chunk_tokens, concrete.max_tokens)
    chunker = Chunker(
        load_tokenizer(tokenizer_path),
        max_tokens=max_tokens,
        overlap_tokens=min(settings.chunk_overlap_tokens, max_tokens // 2),
    )
    return Pipeline(
        embedder=concrete,
        chunker=chunker,
        limits=ParseLimits(max_text_chars=settings.max_text_chars),
        max_file_bytes=settings.max_file_bytes,
    )
