"""Token-aware chunking sized by the embedding model's own tokenizer."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from semantic_text_splitter import TextSplitter
from tokenizers import Tokenizer

from ingest.pipeline.segments import Segment


@dataclass(frozen=True, slots=True)
class Chunk:
    ordinal: int
    text: str
    text_hash: str
    token_count: int
    page: int | None
    heading: str | None


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_tokenizer(path: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path))
    # The model's tokenizer.json truncates at 128 tokens and pads: counting with
    # it as shipped would silently cap every chunk (COMPONENTS.md pitfall).
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class Chunker:
    """Splits each segment on semantic boundaries (paragraph, sentence, word) into
    chunks of at most `max_tokens` model tokens, overlapping by `overlap_tokens`.

    Chunks never span segments, so every chunk keeps its page and heading."""

    def __init__(self, tokenizer: Tokenizer, *, max_tokens: int, overlap_tokens: int) -> None:
        if overlap_tokens >= max_tokens:
            raise ValueError("chunk overlap must be smaller than the chunk size")
        self._tokenizer = tokenizer
        self._splitter = TextSplitter.from_huggingface_tokenizer(
            tokenizer, capacity=max_tokens, overlap=overlap_tokens, trim=True
        )
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens

    def describe(self) -> dict[str, object]:
        return {
            "splitter": "semantic-text-splitter",
            "max": self.max_tokens,
            "overlap": self.overlap_tokens,
        }

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def chunk(self, segments: Sequence[Segment]) -> list[Chunk]:
        out: list[Chunk] = []
        for segment in segments:
            for piece in self._splitter.chunks(segment.text):
                if not piece.strip():
                    continue
                out.append(
                    Chunk(
                        ordinal=len(out),
                        text=piece,
                        text_hash=text_hash(piece),
                        token_count=self.count_tokens(piece),
                        page=segment.page,
                        heading=segment.heading,
                    )
                )
        return out
