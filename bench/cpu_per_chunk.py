"""Issue 12's CPU target: a first `ingest add`'s CPU seconds per embedded chunk,
against the bare embedder's on the very same chunks (target: within 1.1x).

    .venv/bin/python bench/cpu_per_chunk.py --docs 5183 [--src A/src --src B/src] [--cpus 1]

For each --src (a checkout's src, e.g. from `git archive`), in turn:

1. `ingest add` of the first N SciFact documents (one `<id>.txt` each) into a fresh
   SQLite file, with compare.py's settings (INGEST_CONCURRENCY=1,
   INGEST_EMBEDDING_THREADS=1): its CPU seconds, the whole process with its children
   (interpreter, imports, model load, work), from getrusage;
2. in a new process, the bare embedder (OnnxEmbedder alone, batches of 8, timed
   after its load) on the chunk texts that run stored: the yardstick.

Both ratios are printed: the whole run's CPU per chunk against the bare embedder's,
and the whole run's CPU against the CPU inside its own embedder calls
(bench/embedder_cpu/sitecustomize.py: tokenise, forward pass, pool, the bare
embedder's work). The model's cost moves by ±3% from run to run, the first ratio
with it; the second divides each run by its own model cost ("at equal model cost"),
the figure of record in docs/benchmarks.md.

The model's graph is built (when not cached yet) and the bytecode compiled by a
one-document run first.

`--cpus 1` runs both on one CPU (sched_setaffinity). Without it, ingest runs one
model runner per CPU (on two cores, a document's chunks two at a time: faster by the
clock, but each run costs more CPU when two share the cache and the memory bus),
while the bare embedder runs one at a time: the ratio then also counts that. With
it, both run the model alike and the ratio is the pipeline's own overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from overhead_bench import add_env, write_corpus

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGET = 1.1

BARE = """
import json, sqlite3, sys, time
from ingest.embedding import build_embedder
from ingest.settings import Settings
texts = [r[0] for r in sqlite3.connect(sys.argv[1]).execute("SELECT text FROM chunks ORDER BY pk")]
embedder = build_embedder(Settings())
embedder.warm_up()
cpu = time.process_time()
for start in range(0, len(texts), 8):
    embedder.embed(texts[start : start + 8])
print(json.dumps({"cpu": time.process_time() - cpu, "chunks": len(texts)}))
"""


def pinned(cpus: int | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    chosen = sorted(os.sched_getaffinity(0))[:cpus]
    return lambda: os.sched_setaffinity(0, chosen)


def child_cpu(command: list[str], env: dict[str, str], cpus: int | None) -> tuple[float, str]:
    """CPU seconds of a child process (and its children), and its standard output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        command, env=env, capture_output=True, text=True, check=True, preexec_fn=pinned(cpus)
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, out.stdout


def ingest_add(src: Path, docs: Path, work: Path, cpus: int | None) -> tuple[float, Path, float]:
    """CPU seconds of the run, its database, and the CPU inside its embedder's calls."""
    db = Path(tempfile.mkdtemp(dir=work)) / "ingest.db"
    command = [str(REPO / ".venv/bin/python"), "-m", "ingest", "add", str(docs), "--json"]
    env = add_env([src, HERE / "embedder_cpu"], work, db)
    env["INGEST_BENCH_EMBEDDER_CPU"] = str(db.with_name("embedder_cpu.json"))
    cpu, _ = child_cpu([*command, "--quiet"], env, cpus)
    embedder_cpu = json.loads(Path(env["INGEST_BENCH_EMBEDDER_CPU"]).read_text())["cpu"]
    return cpu, db, float(embedder_cpu)


def bare_embedder(src: Path, db: Path, work: Path, cpus: int | None) -> dict[str, float]:
    command = [str(REPO / ".venv/bin/python"), "-c", BARE, str(db)]
    _, out = child_cpu(command, add_env([src], work, db), cpus)
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--corpus", type=Path, default=Path("/work/shared/data/scifact"))
    p.add_argument("--docs", type=int, default=1000)
    p.add_argument("--src", type=Path, action="append", help="a checkout's src (repeatable)")
    p.add_argument("--cpus", type=int, help="run both on this many CPUs (sched_setaffinity)")
    p.add_argument(
        "--bare-runs", type=int, default=1, help="bare embedder runs, averaged (it moves ±3%%)"
    )
    args = p.parse_args()
    sources = args.src or [REPO / "src"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cpu-per-chunk-") as tmp:
        work = Path(tmp)
        many, one = work / "docs", work / "one"
        n = write_corpus(args.corpus, args.docs, many)
        write_corpus(args.corpus, 1, one)
        for src in sources:  # builds the graph, compiles the bytecode: not timed
            ingest_add(src, one, work, args.cpus)
        for src in sources:
            cpu, db, embedder_cpu = ingest_add(src, many, work, args.cpus)
            bare = [bare_embedder(src, db, work, args.cpus) for _ in range(args.bare_runs)]
            bare_cpu = statistics.mean(run["cpu"] for run in bare)
            chunks = sqlite3.connect(db).execute("SELECT count(*) FROM chunks").fetchone()[0]
            mine, yardstick = cpu / chunks, bare_cpu / bare[0]["chunks"]
            runs = ", ".join(f"{run['cpu']:.2f}" for run in bare)
            print(
                f"{src}: ingest add {cpu:.2f} CPU s for {n} documents, {chunks} chunks "
                f"({embedder_cpu:.2f} in its embedder calls); bare embedder {runs} CPU s",
                flush=True,
            )
            rows.append((src, cpu, embedder_cpu, bare_cpu, chunks, mine / yardstick))
    print(
        "\n| src | ingest add CPU s | of it, embedder calls | bare embedder CPU s (mean) "
        f"| chunks | ratio against the bare embedder ({n} docs) | ratio at equal model cost |"
    )
    print("|---|---|---|---|---|---|---|")
    for src, cpu, embedder_cpu, bare_cpu, chunks, ratio in rows:
        equal = cpu / embedder_cpu
        print(
            f"| {src} | {cpu:.2f} | {embedder_cpu:.2f} | {bare_cpu:.2f} | {chunks} "
            f"| {ratio:.3f}x ({verdict(ratio)}) | {equal:.3f}x ({verdict(equal)}) |"
        )


def verdict(ratio: float) -> str:
    return "met" if ratio <= TARGET else "missed"


if __name__ == "__main__":
    sys.exit(main())
