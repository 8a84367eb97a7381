"""The CPU `ingest add` spends on everything but the model, per document.

    .venv/bin/python bench/overhead_bench.py --docs 1000 [--src A/src --src B/src] [--rounds 3]

The first N SciFact documents (one `<id>.txt` each, as bench/peers/compare.py writes
them) through `ingest add DIR --json --quiet` in a fresh SQLite file, one job thread
and one embedding thread (compare.py's settings), with the model's forward pass
replaced by a deterministic stub (bench/stub_embedder/sitecustomize.py): the CPU
seconds left are the pipeline's overhead, the part the CPU-per-chunk target of issue
12 measures against the bare embedder. A run of one document gives the start-up.
Each --src (a checkout's src, e.g. from `git archive`) runs in turn, round by round,
so old and new share the machine's moods. Minutes, not the tens of minutes a real
full-corpus run takes; a real run (compare.py) remains the figure of record.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def write_corpus(corpus: Path, n: int, folder: Path) -> int:
    folder.mkdir(parents=True)
    written = 0
    with (corpus / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if written >= n:
                break
            doc = json.loads(line)
            text = f"{doc['title']}\n\n{doc['text']}\n"
            (folder / f"{doc['_id']}.txt").write_text(text, encoding="utf-8")
            written += 1
    return written


def add_env(pythonpath: list[Path], work: Path, db: Path) -> dict[str, str]:
    """The environment of a benchmarked `ingest add` (compare.py's settings): one job
    thread and one embedding thread, a fresh SQLite file, bytecode compiled once."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        PYTHONPATH=os.pathsep.join(map(str, pythonpath)),
        PYTHONPYCACHEPREFIX=str(work / "pycache"),
        DATABASE_URL=f"sqlite:///{db}",
        INGEST_EMBEDDING_THREADS="1",
        INGEST_CONCURRENCY="1",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def cpu_of_add(src: Path, docs: Path, work: Path) -> tuple[float, dict[str, int]]:
    """CPU seconds of one `ingest add` (the child and its children) and its report."""
    db = Path(tempfile.mkdtemp(dir=work)) / "ingest.db"
    env = add_env([src, HERE / "stub_embedder"], work, db)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [str(REPO / ".venv/bin/ingest"), "add", str(docs), "--json", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--corpus", type=Path, default=Path("/work/shared/data/scifact"))
    p.add_argument("--docs", type=int, default=1000)
    p.add_argument("--src", type=Path, action="append", help="a checkout's src (repeatable)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    sources = args.src or [REPO / "src"]
    with tempfile.TemporaryDirectory(prefix="overhead-bench-") as tmp:
        work = Path(tmp)
        many, one = work / "docs", work / "one"
        n = write_corpus(args.corpus, args.docs, many)
        write_corpus(args.corpus, 1, one)
        for src in sources:  # compile the bytecode (and build the model's graph) once
            cpu_of_add(src, one, work)
        results: dict[Path, dict[str, list[float]]] = {s: {"one": [], "many": []} for s in sources}
        for r in range(args.rounds):
            for src in sources:
                start_cpu, _ = cpu_of_add(src, one, work)
                cpu, report = cpu_of_add(src, many, work)
                results[src]["one"].append(start_cpu)
                results[src]["many"].append(cpu)
                print(
                    f"round {r + 1} {src}: {cpu:.2f} CPU s for {report['added']} documents "
                    f"({report['chunks']} chunks), start-up {start_cpu:.2f} s",
                    flush=True,
                )
        print(f"\n| src | CPU s, {n} docs (median) | start-up CPU s | per document after it |")
        print("|---|---|---|---|")
        for src, r in results.items():
            many_cpu, one_cpu = statistics.median(r["many"]), statistics.median(r["one"])
            per_doc = 1000 * (many_cpu - one_cpu) / max(n - 1, 1)
            print(f"| {src} | {many_cpu:.2f} | {one_cpu:.2f} | {per_doc:.2f} ms |")


if __name__ == "__main__":
    sys.exit(main())
