"""Parse every file under a directory and report, per format: files, failures with reasons,
files/s; and, for files with a reference text, word recall and precision.

    PYTHONPATH=$PWD/src .venv/bin/python bench/parse_bench.py DIR

Runs parse_document in this process (no isolation child: the figure is the
parsers' own cost), one file at a time. Files are only read, never copied.

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
from ingest.pipeline.segments import ParseLimits

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
        reference = reference_of(path)
        if reference is not None:
            text = "\n".join(segment.text for segment in segments)
            scores[fmt].append(score(path.name, text, reference.read_text(encoding="utf-8")))
    print(f"parser version {PARSER_VERSION}; {len(files)} files under {args.directory}")
    print("| format | files | failed | files/s |\n|---|---|---|---|")
    for fmt in sorted(counts, key=lambda f: -counts[f]):
        rate = counts[fmt] / seconds[fmt] if seconds[fmt] else float("inf")
        print(f"| {fmt} | {counts[fmt]} | {len(failures[fmt])} | {rate:,.0f} |")
    total_failed = sum(len(reasons) for reasons in failures.values())
    total_seconds = sum(seconds.values())
    rate = len(files) / total_seconds if total_seconds else float("inf")
    print(f"| all | {len(files)} | {total_failed} | {rate:,.0f} |")
    _print_scores(scores)
    print("\nFailures:")
    for fmt in sorted(failures):
        for reason in failures[fmt]:
            print(f"- {reason}")


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
