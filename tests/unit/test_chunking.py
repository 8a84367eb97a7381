"""Chunking with the real model tokenizer (all-MiniLM-L6-v2's tokenizer.json; the
model itself is not loaded)."""

from __future__ import annotations

import random
import string

import pytest
from semantic_text_splitter import TextSplitter
from tokenizers import Tokenizer

from ingest.embedding.local import LocalEmbedder
from ingest.errors import DocumentRejected
from ingest.pipeline.chunking import Chunker, load_tokenizer
from ingest.pipeline.segments import Segment
from tests.fixtures_docs import prose


@pytest.fixture(scope="module")
def model() -> LocalEmbedder:
    return LocalEmbedder()  # reads the folder only: the weights load on first embed


@pytest.fixture(scope="module")
def tokenizer(model: LocalEmbedder) -> Tokenizer:
    return load_tokenizer(model.tokenizer_path)


def chunker(tokenizer: Tokenizer, model: LocalEmbedder, **options: int) -> Chunker:
    return Chunker(tokenizer, max_tokens=model.max_tokens, overlap_tokens=32, **options)


def run_without_whitespace(length: int, seed: int) -> str:
    """What a base64 blob or a hex dump looks like to a tokenizer: one long word."""
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(length))


def test_a_run_without_whitespace_becomes_chunks_the_model_can_read(
    tokenizer: Tokenizer, model: LocalEmbedder
) -> None:
    run = run_without_whitespace(6_000, seed=1)
    text = f"{prose(40, 2)} {run} {prose(40, 3)}"

    chunks = chunker(tokenizer, model).chunk([Segment(text)])

    pieces = [c for c in chunks if c.text in run]
    assert len(pieces) > 1, "the run must be cut into several chunks"
    assert "".join(p.text for p in pieces) == run, "nothing of the run is lost"
    for chunk in chunks:
        encoding = tokenizer.encode(chunk.text, add_special_tokens=False)
        # True counts, within the model's window, and no word read as one unknown token.
        assert chunk.token_count == len(encoding.ids)
        assert chunk.token_count <= model.max_tokens
        assert "[UNK]" not in encoding.tokens, chunk.text[:80]
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_a_long_single_line_chunks_as_it_would_in_one_piece(
    tokenizer: Tokenizer, model: LocalEmbedder
) -> None:
    # Longer than the window the chunker works in, so several windows are stitched.
    line = prose(6_000, 4).replace("\n\n", " ")
    windows: list[tuple[int, int]] = []

    chunks = chunker(tokenizer, model).chunk([Segment(line)], lambda d, t: windows.append((d, t)))

    splitter = TextSplitter.from_huggingface_tokenizer(
        tokenizer, capacity=model.max_tokens, overlap=32, trim=True
    )
    whole = splitter.chunks(line)
    assert [c.text for c in chunks] == [piece for piece in whole if piece.strip()]
    assert len(windows) > 2, "the text was chunked window by window"
    assert windows[-1] == (len(line), len(line))


def test_too_many_chunks_reject_the_document(tokenizer: Tokenizer, model: LocalEmbedder) -> None:
    text = run_without_whitespace(2_000_000, seed=5)
    with pytest.raises(DocumentRejected, match="INGEST_MAX_CHUNKS_PER_DOCUMENT"):
        chunker(tokenizer, model, max_chunks=1_000).chunk([Segment(text)])
