"""Token-aware chunking sized by the embedding model's own tokenizer."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from semantic_text_splitter import TextSplitter
from tokenizers import Tokenizer

from ingest.errors import DocumentRejected
from ingest.pipeline.segments import Segment

# The splitter's cost grows faster than the text (a 3 MB line without sentence
# ends took 79 s in one call), and nothing can stop it mid-call: it gets the text
# a window at a time, ~0.2 s each on a busy core, with a checkpoint between.
WINDOW_CHARS = 16_384
# A WordPiece tokenizer turns a word longer than this into one [UNK]: an 8 MB
# run without spaces counted as 1 token. Tokenizers without such a limit use it
# as the bound on one token's span.
DEFAULT_MAX_WORD_CHARS = 100
# What the splitter trims from a chunk's ends: Rust's char::is_whitespace (Unicode
# White_Space). Python's str.strip() also strips U+001C..U+001F, which the splitter keeps.
SPLITTER_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# A text that fits in one chunk is taken whole without the splitter (one count
# instead of its search): tried on texts up to this many characters per token of the
# chunk size. Longer ones hardly ever fit, and counting them whole would be wasted.
WHOLE_TRY_CHARS_PER_TOKEN = 16

# Where a BERT tokenizer's words always end, whatever the text around (_WordSumCounts):
# at ASCII whitespace (tab, line feed, carriage return, space: whitespace to its
# normalizer and its word split alike) and on both sides of each ASCII punctuation
# character (each printable one that is neither a letter, a digit nor a space: a word
# of its own). Everything else (letters, digits, other characters, control characters
# the normalizer drops) stays in one piece for the tokenizer to split further.
_BERT_PIECE = re.compile(r"[!-/:-@\[-`{-~]|[^\t\n\r !-/:-@\[-`{-~]+")
# How many pieces a chunker remembers the count of (all SciFact: 45,560, ~5 MB; ~20 MB
# at worst: pieces longer than the tokenizer's per-word limit are not remembered).
# Then it starts afresh.
MAX_KNOWN_PIECES = 100_000

ChunkProgress = Callable[[int, int], None]
"""Called as (characters chunked, characters in all) after each window."""


def _ignore(done: int, total: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Chunk:
    ordinal: int
    text: str
    text_hash: str
    token_count: int
    page: int | None
    heading: str | None
    # Some of its text was read by OCR (from its segment: chunks never span segments).
    ocr: bool = False


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

    Chunks never span segments, so every chunk keeps its page and heading. A run of
    text the tokenizer would swallow whole as one unknown token (a word longer than
    its per-word limit: base64, hex dumps) is cut into pieces it can read, each a
    chunk of its own. More than `max_chunks` chunks reject the document."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        max_tokens: int,
        overlap_tokens: int,
        max_chunks: int = 50_000,
    ) -> None:
        if overlap_tokens >= max_tokens:
            raise ValueError("chunk overlap must be smaller than the chunk size")
        self._tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.max_chunks = max_chunks
        limit = getattr(tokenizer.model, "max_input_chars_per_word", None)
        self.max_word_chars = int(limit) if limit else DEFAULT_MAX_WORD_CHARS
        self._long_candidate = re.compile(rf"\S{{{self.max_word_chars + 1},}}")
        # What sizes the splitter's candidates: a sum of word counts where that is
        # provably the tokenizer's count (most of the CPU went to tokenizing them).
        self._measure = token_counter(tokenizer, self.count_tokens)

    def describe(self) -> dict[str, object]:
        return {
            "splitter": "semantic-text-splitter",
            "max": self.max_tokens,
            "overlap": self.overlap_tokens,
            "window": WINDOW_CHARS,
            "max_word_chars": self.max_word_chars,
            # A rejection for too many chunks is final for this pipeline only.
            "max_chunks": self.max_chunks,
        }

    def count_tokens(self, text: str) -> int:
        # The fast batch call: the ids without the character offsets (encode's extra work).
        return len(self._tokenizer.encode_batch_fast([text], add_special_tokens=False)[0].ids)

    def chunk(
        self, segments: Sequence[Segment], on_window: ChunkProgress | None = None
    ) -> list[Chunk]:
        """The segments' chunks. `on_window` is where a caller may stop the work:
        whatever it raises ends the chunking."""
        report = on_window or _ignore
        total = sum(len(segment.text) for segment in segments)
        done = 0
        report(0, total)
        sink = _Sink(self.max_chunks)
        for segment in segments:
            for consumed in self._windows(segment, sink):
                done += consumed
                report(done, total)
        return sink.chunks

    def _windows(self, segment: Segment, sink: _Sink) -> Iterator[int]:
        """Chunk one segment a window at a time; yields the characters each consumed."""
        text = segment.text
        pos = 0
        while pos < len(text):
            window = text[pos : pos + WINDOW_CHARS]
            last = pos + len(window) >= len(text)
            counts = _TokenCounts(self._measure)
            if runs := self._long_runs(window):
                # Up to the end of the window's last run; what follows it, the next
                # window takes whole. The text before a run ends where the run starts.
                cursor = 0
                for start, stop in runs:
                    self._add_split(window[cursor:start], segment, sink, counts)
                    cut = stop == len(window) and not last
                    ahead = _run_ahead(text, pos + stop) if cut else 0
                    self._add_run(window[start:stop], segment, sink, ahead)
                    cursor = stop
                advance = cursor
            else:
                indexed = self._split(window, counts)
                if not last and len(indexed) > 1:
                    # The last chunk may end where the window cuts the text: the next
                    # window starts with it, so no chunk ends at an arbitrary cut.
                    indexed, advance = indexed[:-1], indexed[-1][0]
                else:
                    advance = len(window)
                for _, piece in indexed:
                    self._add(piece, segment, sink, counts(piece))
            pos += advance
            yield advance

    def _add(self, text: str, segment: Segment, sink: _Sink, tokens: int | None = None) -> None:
        if not text.strip():
            return
        count = self.count_tokens(text) if tokens is None else tokens
        sink.add(text, count, segment)

    def _add_split(self, text: str, segment: Segment, sink: _Sink, counts: _TokenCounts) -> None:
        if text:
            for _, piece in self._split(text, counts):
                self._add(piece, segment, sink, counts(piece))

    def _split(self, text: str, counts: _TokenCounts) -> list[tuple[int, str]]:
        """The splitter's chunks of `text` with their character offsets, each count
        kept in `counts`. A text whose trimmed whole fits is the one chunk the
        splitter would make of it: taken without the splitter's search."""
        trimmed = text.strip(SPLITTER_WHITESPACE)
        if (
            len(trimmed) <= self.max_tokens * WHOLE_TRY_CHARS_PER_TOKEN
            and counts(trimmed) <= self.max_tokens
        ):
            offset = len(text) - len(text.lstrip(SPLITTER_WHITESPACE))
            return [(offset, trimmed)] if trimmed else []
        # Built per text, with its own counts: cheap (<1 us), and nothing is shared
        # between threads chunking at once.
        splitter = TextSplitter.from_callback(
            counts, capacity=self.max_tokens, overlap=self.overlap_tokens, trim=True
        )
        return splitter.chunk_indices(text)

    def _long_runs(self, window: str) -> list[tuple[int, int]]:
        """Where tokens standing for more than `max_word_chars` characters are:
        words the tokenizer gave up on. Only a long enough run without whitespace
        can be one, and that a regex finds far faster than the tokenizer."""
        if not self._long_candidate.search(window):
            return []
        encoding = self._tokenizer.encode(window, add_special_tokens=False)
        return [(a, b) for a, b in encoding.offsets if b - a > self.max_word_chars]

    def _add_run(self, run: str, segment: Segment, sink: _Sink, ahead: int) -> None:
        """Cut a run into pieces short enough to tokenize, each within the chunk size
        and a chunk of its own (side by side they would merge into one word again).
        `ahead`: characters of the same run past the window."""
        # Refuse before tokenizing a run that cannot fit: each piece costs ~1 ms.
        sink.reserve(-(-(len(run) + ahead) // self.max_word_chars))
        pos = 0
        while pos < len(run):
            size = self.max_word_chars
            tokens = self.count_tokens(run[pos : pos + size])
            while tokens > self.max_tokens and size > 1:
                size //= 2
                tokens = self.count_tokens(run[pos : pos + size])
            self._add(run[pos : pos + size], segment, sink, tokens)
            pos += size


class _TokenCounts:
    """The splitter's chunk sizer: the model tokenizer's count, remembered by text.
    The same count as the splitter's own Hugging Face sizer (no special tokens; the
    tokenizer neither truncates nor pads: load_tokenizer), so the same chunks. The
    splitter forgets its sizes after each chunk; these it meets again in the next
    chunk's search (the overlap), and every chunk it returns is a text it measured:
    its token count costs nothing more."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self._count = count
        self._known: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        known = self._known.get(text)
        if known is None:
            known = self._known[text] = self._count(text)
        return known


def token_counter(tokenizer: Tokenizer, count: Callable[[str], int]) -> Callable[[str], int]:
    """`count`, the tokenizer's count of a text without special tokens, made faster
    where that is provably the same count: a BERT WordPiece tokenizer's
    (_WordSumCounts)."""
    if not _is_bert_wordpiece(tokenizer):
        return count
    return _WordSumCounts(tokenizer, int(tokenizer.model.max_input_chars_per_word), count)


def _is_bert_wordpiece(tokenizer: Tokenizer) -> bool:
    """Whether a count of `tokenizer` (no special tokens) is the sum of the counts of
    a text's pieces (_BERT_PIECE): BERT's normalizer, BERT's word split, WordPiece
    (each word on its own), nothing truncated or padded, and added tokens matched in
    the raw text only (a text that holds one is counted whole: _WordSumCounts)."""
    config = json.loads(tokenizer.to_str())
    return (
        (config.get("normalizer") or {}).get("type") == "BertNormalizer"
        and (config.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
        and (config.get("model") or {}).get("type") == "WordPiece"
        # Without special tokens these add nothing; another post-processor might.
        and (config.get("post_processor") or {}).get("type", "TemplateProcessing")
        in ("TemplateProcessing", "BertProcessing")
        and config.get("truncation") is None
        and config.get("padding") is None
        and not any(token.get("normalized") for token in config.get("added_tokens") or [])
    )


class _WordSumCounts:
    """The count of a BERT WordPiece tokenizer (_is_bert_wordpiece) as the sum of the
    counts of a text's pieces (_BERT_PIECE), each piece tokenized once (lowercasing,
    accents, [UNK] for a word over the per-word limit: all the tokenizer's own).

    Why the sum is the count: the normalizer works a character at a time (dropping
    control characters, lowercasing, spacing out Chinese characters, decomposing and
    stripping accents: decomposition reorders only runs of combining marks, which an
    ASCII character ends), so it never joins or parts text across a piece's end; the
    word split ends words there; WordPiece works a word at a time. A text holding an
    added token's text (`[CLS]`: one token, matched before any of that, across the
    punctuation) is counted whole by `count`.

    One per Chunker, shared by the threads chunking with it: a piece's count never
    changes, so a lookup that misses while another thread stores, or after a reset,
    only tokenizes that piece again (dict reads and writes are atomic)."""

    def __init__(
        self, tokenizer: Tokenizer, max_word_chars: int, count: Callable[[str], int]
    ) -> None:
        self._tokenizer = tokenizer
        self._max_word_chars = max_word_chars
        self._count = count
        self._added = tuple(t.content for t in tokenizer.get_added_tokens_decoder().values())
        self._known: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        if any(added in text for added in self._added):
            return self._count(text)
        pieces = _BERT_PIECE.findall(text)
        try:
            return sum(map(self._known.__getitem__, pieces))
        except KeyError:
            return self._count_learning(pieces)

    def _count_learning(self, pieces: list[str]) -> int:
        """The count of `pieces`, tokenizing (in one call) those not known yet."""
        known = self._known
        counts: dict[str, int] = {}
        new: list[str] = []
        for piece in dict.fromkeys(pieces):
            count = known.get(piece)
            if count is None:
                new.append(piece)
            else:
                counts[piece] = count
        encodings = self._tokenizer.encode_batch_fast(new, add_special_tokens=False)
        learned = {piece: len(encoding.ids) for piece, encoding in zip(new, encodings, strict=True)}
        if len(known) + len(learned) > MAX_KNOWN_PIECES:
            known.clear()
        # A longer piece is an [UNK], a run being cut, or text without spaces (Chinese):
        # rare enough, and unbounded in size.
        known.update((p, n) for p, n in learned.items() if len(p) <= self._max_word_chars)
        counts.update(learned)
        return sum(map(counts.__getitem__, pieces))


# A WordPiece word goes on through ASCII letters and digits at least: how far a run
# the window cut goes on, counted low so that only a run that cannot fit is refused.
_ASCII_WORD = re.compile("[A-Za-z0-9]*")


def _run_ahead(text: str, at: int) -> int:
    match = _ASCII_WORD.match(text, at)
    return match.end() - at if match else 0


class _Sink:
    """The chunks of one document, bounded by `max_chunks`."""

    def __init__(self, max_chunks: int) -> None:
        self.max_chunks = max_chunks
        self.chunks: list[Chunk] = []

    def reserve(self, count: int) -> None:
        if len(self.chunks) + count > self.max_chunks:
            raise DocumentRejected(
                f"the document makes more than {self.max_chunks:,} chunks "
                "(INGEST_MAX_CHUNKS_PER_DOCUMENT)"
            )

    def add(self, text: str, token_count: int, segment: Segment) -> None:
        self.reserve(1)
        self.chunks.append(
            Chunk(
                ordinal=len(self.chunks),
                text=text,
                text_hash=text_hash(text),
                token_count=token_count,
                page=segment.page,
                heading=segment.heading,
                ocr=segment.ocr,
            )
        )
