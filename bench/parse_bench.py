"""Parse every file under a directory and report, per format: files, failures with reasons, files/s.

    PYTHONPATH=$PWD/src .venv/bin/python bench/parse_bench.py DIR

Runs parse_document in this process (no isolation child: the figure is the
parsers' own cost), one file at a time. Files are only read, never copied.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from ingest.errors import IngestError
from ingest.pipeline.parsers import PARSER_VERSION, parse_document
from ingest.pipeline.segments import ParseLimits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args()
    files = sorted(path for path in args.directory.rglob("*") if path.is_file())
    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    failures: dict[str, list[str]] = defaultdict(list)
    for path in files:
        fmt = path.suffix.lower() or "(none)"
        data = path.read_bytes()
        started = time.perf_counter()
        try:
            parse_document(data, path.name, ParseLimits())
        except IngestError as exc:
            failures[fmt].append(f"{path.name}: {type(exc).__name__}: {exc}"[:200])
        seconds[fmt] += time.perf_counter() - started
        counts[fmt] += 1
    print(f"parser version {PARSER_VERSION}; {len(files)} files under {args.directory}")
    print("| format | files | failed | files/s |\n|---|---|---|---|")
    for fmt in sorted(counts, key=lambda f: -counts[f]):
        rate = counts[fmt] / seconds[fmt] if seconds[fmt] else float("inf")
        print(f"| {fmt} | {counts[fmt]} | {len(failures[fmt])} | {rate:,.0f} |")
    total_failed = sum(len(reasons) for reasons in failures.values())
    print(f"| all | {len(files)} | {total_failed} | {len(files) / sum(seconds.values()):,.0f} |")
    print("\nFailures:")
    for fmt in sorted(failures):
        for reason in failures[fmt]:
            print(f"- {reason}")


if __name__ == "__main__":
    main()
