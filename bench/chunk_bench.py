"""Chunking CPU per document, this version against a reference version, on the same
segments in one run; the two must produce identical chunks.

    PYTHONPATH=$PWD/src .venv/bin/python bench/chunk_bench.py \
        --scifact /work/shared/data/scifact --mixed /work/shared/data/mixed

The reference is src/ingest/pipeline/chunking.py as of `--reference` (a git commit,
read with `git show` and loaded as a module of its own), so the comparison survives
merging this version. Both chunkers get the tokenizer and sizes `ingest add` builds by
default. Documents are parsed first (SciFact: title, blank line, abstract, as the
`.txt` file ingest reads; mixed: every file the parsers accept, containers and
failures skipped), then each chunker chunks them all, passes alternating; the figure
is the fastest pass's CPU seconds (process_time: every thread of the process) per
document. Chunks are compared field by field: text, ordinal, hash, token count, page,
heading, OCR flag.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from bench_common import load_corpus
from ingest.context import build_pipeline
from ingest.embedding import build_embedder
from ingest.errors import IngestError
from ingest.pipeline.chunking import Chunker, load_tokenizer
from ingest.pipeline.containers import is_container
from ingest.pipeline.pipeline import Pipeline
from ingest.pipeline.segments import Segment
from ingest.settings import Settings

# The last commit before the chunking shortcuts (chunk-fast).
DEFAULT_REFERENCE = "7e2f2bf932800978db8a4886e5b89cdaad044bda"
CHUNKING_PATH = "src/ingest/pipeline/chunking.py"

Document = tuple[str, list[Segment]]


def load_reference(commit: str) -> ModuleType:
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{commit}:{CHUNKING_PATH}"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec = importlib.util.spec_from_loader("reference_chunking", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    exec(compile(source, f"{commit[:10]}:{CHUNKING_PATH}", "exec"), module.__dict__)
    return module


def scifact_documents(pipeline: Pipeline, root: Path, limit: int | None) -> list[Document]:
    docs = load_corpus(root)[:limit]
    return [(d.id, pipeline.parse(d.as_text().encode(), f"{d.id}.txt")) for d in docs]


def mixed_documents(pipeline: Pipeline, root: Path) -> tuple[list[Document], list[str]]:
    """Every file the parsers accept and every member of a container (an e-mail's
    attachments), as ingest makes documents of them; and why each other was skipped."""
    documents: list[Document] = []
    skipped: list[str] = []

    def parse(name: str, data: bytes) -> None:
        try:
            documents.append((name, pipeline.parse(data, Path(name).name)))
        except IngestError as error:
            skipped.append(type(error).__name__)

    with tempfile.TemporaryDirectory() as spill:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            name = str(path.relative_to(root))
            parse(name, path.read_bytes())  # an e-mail's own text is a document too
            if not is_container(path.name):
                continue
            try:
                expansion = pipeline.expand(path.read_bytes(), path.name, Path(spill))
            except IngestError as error:
                skipped.append(type(error).__name__)
                continue
            for member in expansion.members:
                if member.path:
                    parse(f"{name}!/{member.name}", Path(member.path).read_bytes())
    return documents, skipped


def chunk_all(chunker: Any, documents: Sequence[Document]) -> tuple[float, list[list[tuple]]]:
    outputs = []
    start = time.process_time()
    for _, segments in documents:
        try:
            chunks = chunker.chunk(segments)
        except IngestError as error:
            outputs.append([("rejected", type(error).__name__, str(error))])
            continue
        outputs.append(
            [
                (c.ordinal, c.text, c.text_hash, c.token_count, c.page, c.heading, c.ocr)
                for c in chunks
            ]
        )
    return time.process_time() - start, outputs


def compare(label: str, old: Any, new: Chunker, documents: Sequence[Document], passes: int) -> bool:
    old_times, new_times = [], []
    old_out: list[list[tuple]] = []
    new_out: list[list[tuple]] = []
    for _ in range(passes):
        seconds, old_out = chunk_all(old, documents)
        old_times.append(seconds)
        seconds, new_out = chunk_all(new, documents)
        new_times.append(seconds)
    differing = [
        name for (name, _), a, b in zip(documents, old_out, new_out, strict=True) if a != b
    ]
    n = len(documents)
    chunks = sum(len(out) for out in new_out)
    chars = sum(len(s.text) for _, segments in documents for s in segments)
    old_ms, new_ms = min(old_times) / n * 1e3, min(new_times) / n * 1e3
    print(
        f"{label}: {n} documents, {chunks} chunks, {chars:,} characters; "
        f"CPU ms per document: reference {old_ms:.3f}, this version {new_ms:.3f} "
        f"({new_ms / old_ms:.2f}x; passes: reference "
        f"{', '.join(f'{t:.2f}' for t in old_times)} s, this version "
        f"{', '.join(f'{t:.2f}' for t in new_times)} s)"
    )
    if differing:
        print(f"  DIFFERENT chunks in {len(differing)} documents: {differing[:10]}")
    else:
        print("  identical chunks in every document")
    return not differing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scifact", type=Path, help="BEIR folder or corpus.jsonl")
    parser.add_argument("--mixed", type=Path, help="a folder of documents of any format")
    parser.add_argument("--limit", type=int, help="first N SciFact documents only")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--reference", default=DEFAULT_REFERENCE, help="git commit")
    args = parser.parse_args()

    settings = Settings()
    pipeline = build_pipeline(settings, build_embedder(settings))
    new = pipeline.chunker
    reference = load_reference(args.reference)
    old = reference.Chunker(
        load_tokenizer(
            Path(settings.tokenizer) if settings.tokenizer else pipeline.embedder.tokenizer_path
        ),
        max_tokens=new.max_tokens,
        overlap_tokens=new.overlap_tokens,
        max_chunks=new.max_chunks,
    )
    print(f"reference {args.reference[:10]}; chunker {new.describe()}")
    identical = True
    if args.scifact:
        documents = scifact_documents(pipeline, args.scifact, args.limit)
        identical &= compare("SciFact", old, new, documents, args.passes)
    if args.mixed:
        documents, skipped = mixed_documents(pipeline, args.mixed)
        reasons = ", ".join(f"{r}: {n}" for r, n in Counter(skipped).items())
        print(f"mixed: skipped {len(skipped)} files ({reasons})")
        identical &= compare("mixed", old, new, documents, args.passes)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
