"""Chunking with the real model tokenizer (all-MiniLM-L6-v2's tokenizer.json; the
model itself is not loaded)."""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from semantic_text_splitter import TextSplitter
from tokenizers import Tokenizer, pre_tokenizers

from ingest.embedding import build_embedder
from ingest.embedding.onnx_embedder import OnnxEmbedder
from ingest.errors import DocumentRejected
from ingest.pipeline.chunking import Chunker, load_tokenizer, token_counter
from ingest.pipeline.parsers.tables import markdown_table
from ingest.pipeline.segments import Segment
from ingest.settings import Settings
from tests.fixtures_docs import prose


@pytest.fixture(scope="module")
def model() -> OnnxEmbedder:
    # The default embedder; it reads the folder only: the model loads on first embed.
    embedder = build_embedder(Settings())
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


@pytest.fixture(scope="module")
def tokenizer(model: OnnxEmbedder) -> Tokenizer:
    return load_tokenizer(model.tokenizer_path)


def chunker(tokenizer: Tokenizer, model: OnnxEmbedder, **options: int) -> Chunker:
    return Chunker(tokenizer, max_tokens=model.max_tokens, overlap_tokens=32, **options)


def run_without_whitespace(length: int, seed: int) -> str:
    """What a base64 blob or a hex dump looks like to a tokenizer: one long word."""
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(length))


def test_a_run_without_whitespace_becomes_chunks_the_model_can_read(
    tokenizer: Tokenizer, model: OnnxEmbedder
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
    tokenizer: Tokenizer, model: OnnxEmbedder
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


def test_too_many_chunks_reject_the_document(tokenizer: Tokenizer, model: OnnxEmbedder) -> None:
    text = run_without_whitespace(2_000_000, seed=5)
    with pytest.raises(DocumentRejected, match="INGEST_MAX_CHUNKS_PER_DOCUMENT"):
        chunker(tokenizer, model, max_chunks=1_000).chunk([Segment(text)])


# --- a text that fits in one chunk is taken whole, as the splitter would ------------


def splitter_chunks(
    tokenizer: Tokenizer, model: OnnxEmbedder, segments: list[Segment]
) -> list[tuple[str, int, int | None, str | None]]:
    """What the splitter itself makes of each segment, counted by the tokenizer: the
    chunks the chunker made before it took fitting texts whole."""
    splitter = TextSplitter.from_huggingface_tokenizer(
        tokenizer, capacity=model.max_tokens, overlap=32, trim=True
    )
    return [
        (piece, len(tokenizer.encode(piece, add_special_tokens=False).ids), s.page, s.heading)
        for s in segments
        for piece in splitter.chunks(s.text)
        if piece.strip()
    ]


def chunked(
    tokenizer: Tokenizer, model: OnnxEmbedder, segments: list[Segment]
) -> list[tuple[str, int, int | None, str | None]]:
    chunks = chunker(tokenizer, model).chunk(segments)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    return [(c.text, c.token_count, c.page, c.heading) for c in chunks]


def text_of_tokens(tokenizer: Tokenizer, tokens: int) -> str:
    """Prose of exactly `tokens` model tokens (ending on a whole word)."""
    words = prose(3 * tokens, 6).split(" ")

    def count() -> int:
        return len(tokenizer.encode(" ".join(words), add_special_tokens=False).ids)

    while count() > tokens:
        words.pop()
    while count() < tokens:
        words.append("a")  # one token
    text = " ".join(words)
    assert len(tokenizer.encode(text, add_special_tokens=False).ids) == tokens
    return text


@pytest.mark.parametrize("over", [-1, 0, 1, 2])
def test_a_text_at_the_chunk_size_or_just_over_chunks_as_the_splitter_does(
    tokenizer: Tokenizer, model: OnnxEmbedder, over: int
) -> None:
    text = text_of_tokens(tokenizer, model.max_tokens + over)
    segments = [Segment(f"\n  {text} \n\n", page=3, heading="Results")]

    made = chunked(tokenizer, model, segments)

    assert made == splitter_chunks(tokenizer, model, segments)
    assert (len(made) == 1) == (over <= 0)


# Every character Python or Rust calls whitespace: the splitter trims only Rust's,
# U+001C..U+001F it keeps (Python's strip() would not).
WHITESPACE = sorted(
    {chr(c) for c in range(0x3001) if chr(c).isspace()} | set("\x85\xa0\u1680\u3000")
)


@pytest.mark.parametrize("space", WHITESPACE, ids=lambda c: f"U+{ord(c):04X}")
def test_whitespace_around_a_fitting_text_is_trimmed_as_the_splitter_trims_it(
    tokenizer: Tokenizer, model: OnnxEmbedder, space: str
) -> None:
    segments = [
        Segment(f"{space}{space}Lead and trail.{space}"),
        Segment(f"{space}inner{space}words {space}{space}", page=2),
        Segment(f"{space} {space}", heading="only space"),
    ]
    assert chunked(tokenizer, model, segments) == splitter_chunks(tokenizer, model, segments)


def test_whitespace_only_segments_make_no_chunk(tokenizer: Tokenizer, model: OnnxEmbedder) -> None:
    segments = [Segment(" \n\t\u3000 "), Segment(""), Segment("\x1c \x1f")]
    assert chunked(tokenizer, model, segments) == []


def test_each_segment_chunks_on_its_own_whether_it_fits_or_not(
    tokenizer: Tokenizer, model: OnnxEmbedder
) -> None:
    segments = [
        Segment("A short title", page=1, heading="Title"),
        Segment(prose(600, 7), page=1, heading="Body"),
        Segment("\n\nAnother short one.\n", page=2, heading=None),
        Segment(text_of_tokens(tokenizer, model.max_tokens), page=2, heading="Exact"),
        Segment(prose(190, 8), page=3, heading="Tail"),
    ]

    made = chunked(tokenizer, model, segments)

    assert made == splitter_chunks(tokenizer, model, segments)
    assert [(page, heading) for _, _, page, heading in made][:1] == [(1, "Title")]


# --- the word-sum count of a BERT WordPiece tokenizer is its own count ---------------


def exact_count(tokenizer: Tokenizer) -> Callable[[str], int]:
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def ascii_text(rng: random.Random) -> str:
    """Words, numbers, punctuation and whitespace the way prose, code and tables mix
    them, with words about the tokenizer's per-word limit (100 characters) and the
    text of its special tokens."""
    letters = string.ascii_letters + string.digits
    makers = [
        lambda: "".join(rng.choices(string.ascii_letters, k=rng.randint(1, 12))),
        lambda: "".join(rng.choices(string.digits, k=rng.randint(1, 6))),
        lambda: "".join(rng.choices(letters, k=rng.randint(1, 15))),
        lambda: "".join(rng.choices(string.punctuation, k=rng.randint(1, 4))),
        lambda: "".join(rng.choices(" \t\n\r", k=rng.randint(1, 3))),
        lambda: "".join(rng.choices(letters, k=rng.choice([99, 100, 101, 102, 150]))),
        lambda: rng.choice(["[CLS]", "[cls]", "[SEP]", "[UNK]", "[MASK]", "[PAD", "CLS]"]),
        lambda: rng.choice(["don't", "U.S.A.", "3.5e-7", "x_1", "a->b", "(p<0.05),", "@home"]),
    ]
    weights = [30, 5, 5, 10, 30, 1, 1, 3]
    count = rng.choice([0, 1, 2, 5, 20, 200])
    return "".join(maker() for maker in rng.choices(makers, weights, k=count))


def test_a_bert_wordpiece_count_of_ascii_text_is_the_sum_of_its_words(
    tokenizer: Tokenizer,
) -> None:
    exact = exact_count(tokenizer)
    counter = token_counter(tokenizer, exact)
    rng = random.Random(12)
    texts = [ascii_text(rng) for _ in range(3_000)]
    printable = string.printable.replace("\x0b", "").replace("\x0c", "")
    texts += ["", " ", "\r\n", printable, *printable, *(c * 3 for c in printable)]
    texts += [prose(300, 9), "A" * 100, "A" * 101, "a" * 5_000 + " end"]

    for text in texts + texts:  # the second time, every word is known
        assert counter(text) == exact(text), repr(text)


def test_text_beyond_ascii_is_counted_as_the_tokenizer_counts_it(tokenizer: Tokenizer) -> None:
    # Each would be counted wrong as a sum of ASCII words: BERT drops control
    # characters (\x0b \x0c \x1c \x7f are no whitespace to it), splits Chinese
    # characters apart, strips accents (a mark after a space or a full stop too), and
    # knows words beyond ASCII.
    exact = exact_count(tokenizer)
    counter = token_counter(tokenizer, exact)
    texts = [f"ab{c}cd ef" for c in "\x00\x01\x0b\x0c\x1b\x1c\x1d\x1e\x1f\x7f\x80\x85\xa0\u3000"]
    texts += ["café naïve", "日本語のテキスト", "Σίσυφος", "e\u0301t\u00e9", "ﬁne", "x\ufffdy"]
    texts += ["a \u0301b", "a.\u0301\u0327b", "\u037e;", "A\u212a\u2126", "x\u200by\ufeffz"]
    texts += [f"{prose(40, 4)} {extra} {prose(40, 5)}" for extra in ("µm", "β-cell", "–")]

    for text in texts:
        assert counter(text) == exact(text), repr(text)


def test_every_character_in_any_context_is_counted_as_the_tokenizer_counts_it(
    tokenizer: Tokenizer,
) -> None:
    # All of the first planes' scripts, then a sample of the rest (all of it, once,
    # in these contexts: 6.7 million texts, no difference).
    code_points = [*range(0x3000), *range(0x3000, 0x110000, 61)]
    characters = [chr(c) for c in code_points if not 0xD800 <= c <= 0xDFFF]
    texts = [
        text
        for c in characters
        for text in (f"a{c}b", f"x {c}.{c}y", f"{c}\u0301.{c}a\u0301", f"\u00e9{c} ,{c}\n")
    ]
    counter = token_counter(tokenizer, exact_count(tokenizer))

    exact = [len(e.ids) for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]

    assert [counter(text) for text in texts] == exact


@pytest.mark.parametrize("change", ["pre_tokenizer", "truncation"])
def test_a_tokenizer_that_is_not_plain_bert_wordpiece_counts_whole_texts(
    model: OnnxEmbedder, change: str
) -> None:
    other = load_tokenizer(model.tokenizer_path)
    if change == "pre_tokenizer":
        other.pre_tokenizer = pre_tokenizers.Whitespace()  # "..." is one word, one token
        text, tokens = "so... on", 3  # BERT's words would be 5
    else:
        other.enable_truncation(max_length=4)
        text, tokens = "one two three four five six", 4
    exact = exact_count(other)
    assert exact(text) == tokens

    assert token_counter(other, exact)(text) == exact(text)


def test_threads_counting_at_once_get_the_tokenizer_counts(tokenizer: Tokenizer) -> None:
    exact = exact_count(tokenizer)
    counter = token_counter(tokenizer, exact)
    rng = random.Random(13)
    texts = [ascii_text(rng) for _ in range(400)]

    with ThreadPoolExecutor(4) as pool:
        counted = list(pool.map(counter, texts * 4))

    assert counted == [exact(text) for text in texts * 4]


# --- tables ---------------------------------------------------------------------------


def test_a_chunk_never_splits_a_table_row(tokenizer: Tokenizer, model: OnnxEmbedder) -> None:
    rows = [["Item", "What happened", "Amount"]] + [
        [f"Item {n}", f"Quarterly revenue grew in region {n} of {n * 7} stores", f"{n},700 EUR"]
        for n in range(1, 120)
    ]
    table = markdown_table(rows)
    intro = prose(40, 3)  # a paragraph before the table

    chunks = chunker(tokenizer, model).chunk([Segment(f"{intro}\n\n{table}", heading="Prices")])

    assert len(chunks) > 5, "the table spans several chunks"
    table_lines = set(table.splitlines())
    for chunk in chunks:
        lines = chunk.text.split("\n")
        cut = [line for line in lines if "|" in line and line not in table_lines]
        assert not cut, f"chunk {chunk.ordinal} holds part of a row: {cut}"
    rows_seen = {line for chunk in chunks for line in chunk.text.split("\n")}
    assert table_lines <= rows_seen, "every row is in some chunk"
