"""Parse every file under a directory and report, per format: files, failures with reasons,
pages and pages/s, files/s; and, for files with a reference text, word recall and precision.

    PYTHONPATH=$PWD/src .venv/bin/python bench/parse_bench.py DIR

Runs parse_document in this process (no isolation child: the figure is the
parsers' own cost), one file at a time. Files are only read, never copied.

A file's pages are the page numbers its text carries (a PDF's pages, a deck's
slides, a TIFF's frames); a file without any (a text, a sheet, an e-mail) is one
page; a file that fails, none.

A reference is a file named after the one it describes plus `.md` (`memo.docx.md`
beside `memo.docx`) holding the text a reader sees in it. Words are compared as
multisets (lower case, NFKC, runs of letters and digits): recall is the share of the
reference's words the parser found, precision the share of the parser's words that
are in the reference. A reference is not parsed as a document of its own.
"""

from __future__ import annotations

import argparse
import re
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import IngestError
from ingest.pipeline.parsers import PARSER_VERSION, parse_document
from ingest.pipeline.segments import ParseLimits, Segment

_WORD = re.compile(r"\w+")
REFERENCE_SUFFIX = ".md"


@dataclass(frozen=True)
class Score:
    name: str
    recall: float
    precision: float


def words(text: str) -> Counter[str]:
    return Counter(_WORD.findall(unicodedata.normalize("NFKC", text).lower()))


def score(name: str, extracted: str, reference: str) -> Score:
    found, wanted = words(extracted), words(reference)
    common = sum((found & wanted).values())
    recall = common / sum(wanted.values()) if wanted else 1.0
    precision = common / sum(found.values()) if found else (1.0 if not wanted else 0.0)
    return Score(name, recall, precision)


def reference_of(path: Path) -> Path | None:
    candidate = path.with_name(path.name + REFERENCE_SUFFIX)
    return candidate if candidate.is_file() else None


def is_reference(path: Path) -> bool:
    """`memo.docx.md` beside `memo.docx`: a reference, not a document."""
    if path.suffix != REFERENCE_SUFFIX:
        return False
    described = path.with_name(path.name.removesuffix(REFERENCE_SUFFIX))
    return bool(described.suffix) and described.is_file()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args()
    everything = sorted(path for path in args.directory.rglob("*") if path.is_file())
    files = [path for path in everything if not is_reference(path)]
    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    pages: dict[str, int] = defaultdict(int)
    failures: dict[str, list[str]] = defaultdict(list)
    scores: dict[str, list[Score]] = defaultdict(list)
    for path in files:
        fmt = path.suffix.lower() or "(none)"
        data = path.read_bytes()
        started = time.perf_counter()
        try:
            segments = parse_document(data, path.name, ParseLimits())
        except IngestError as exc:
            failures[fmt].append(f"{path.name}: {type(exc).__name__}: {exc}"[:200])
            segments = []
        seconds[fmt] += time.perf_counter() - started
        counts[fmt] += 1
        pages[fmt] += page_count(segments)
        reference = reference_of(path)
        if reference is not None:
            text = "\n".join(segment.text for segment in segments)
            scores[fmt].append(score(path.name, text, reference.read_text(encoding="utf-8")))
    print(f"parser version {PARSER_VERSION}; {len(files)} files under {args.directory}")
    print("| format | files | failed | pages | pages/s | files/s |\n|---|---|---|---|---|---|")
    for fmt in sorted(counts, key=lambda f: -counts[f]):
        print(_row(fmt, counts[fmt], len(failures[fmt]), pages[fmt], seconds[fmt]))
    total_failed = sum(len(reasons) for reasons in failures.values())
    print(_row("all", len(files), total_failed, sum(pages.values()), sum(seconds.values())))
    _print_scores(scores)
    print("\nFailures:")
    for fmt in sorted(failures):
        for reason in failures[fmt]:
            print(f"- {reason}")


def page_count(segments: list[Segment]) -> int:
    """The distinct page numbers the segments carry; 1 for parsed text without any."""
    numbers = {segment.page for segment in segments if segment.page is not None}
    return len(numbers) or (1 if segments else 0)


def _row(fmt: str, files: int, failed: int, pages: int, seconds: float) -> str:
    def rate(count: int) -> str:
        return f"{count / seconds:,.1f}" if seconds else "inf"

    return f"| {fmt} | {files} | {failed} | {pages} | {rate(pages)} | {rate(files)} |"


def _print_scores(scores: dict[str, list[Score]]) -> None:
    if not scores:
        print(f"\nNo reference texts (name.ext{REFERENCE_SUFFIX}): no word recall/precision.")
        return
    print("\nWord recall and precision against the reference texts:")
    print("| file | recall | precision |\n|---|---|---|")
    for fmt in sorted(scores):
        for item in scores[fmt]:
            print(f"| {item.name} | {item.recall:.3f} | {item.precision:.3f} |")
    print("\n| format | files | mean recall | mean precision |\n|---|---|---|---|")
    every = [item for items in scores.values() for item in items]
    for fmt, items in [*sorted(scores.items()), ("all", every)]:
        recall = sum(item.recall for item in items) / len(items)
        precision = sum(item.precision for item in items) / len(items)
        print(f"| {fmt} | {len(items)} | {recall:.3f} | {precision:.3f} |")


if __name__ == "__main__":
    main()
