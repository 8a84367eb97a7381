"""ingest against LangChain and LlamaIndex: first ingest, then re-ingest after an edit.

    bench/peers/run.sh [--docs 200] [--rounds 2]       # builds /tmp/peers-venv, then this

The same SciFact documents (the first N of corpus.jsonl, one `<id>.txt` each: title,
blank line, text), the same model and runtime (ingest's ONNX int8 all-MiniLM-L6-v2,
one thread: the peers get it wrapped in their embeddings interface), one document at
a time. For each system, in a fresh folder and a fresh store:
  1. first ingest, in a process of its own: wall-clock and CPU seconds (the child's
     and its children's, from getrusage(RUSAGE_CHILDREN));
  2. 10% of the documents edited (a sentence appended);
  3. re-ingest the folder: ingest by `ingest add` again, the peers by their own
     dedup (LangChain: index() with an SQLRecordManager, cleanup="incremental";
     LlamaIndex: IngestionPipeline with a docstore, UPSERTS).
Each run is a whole process (interpreter, imports, model load, work), as a user runs
it; the peers also report their in-process time after the model is loaded.
ingest runs as `ingest add DIR --json` with INGEST_EMBEDDING_THREADS=1,
INGEST_CONCURRENCY=1 and a new SQLite file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EDIT = " This abstract was revised after publication to correct one reported figure."
SYSTEMS = ("ingest", "langchain", "llamaindex")
TARGET_FIRST = 1.3  # ingest's docs/s over each peer's, first ingest
TARGET_AGAIN = 3.0  # re-ingest after the edit, times faster than each peer


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--corpus", type=Path, default=Path("/work/shared/data/scifact"))
    p.add_argument("--docs", type=int, default=200)
    p.add_argument("--edit-fraction", type=float, default=0.10)
    p.add_argument("--rounds", type=int, default=1, help="repeat every system N times")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument(
        "--ingest",
        default=str(REPO / ".venv/bin/ingest"),
        help="the `ingest` command (PYTHONPATH gets this checkout's src first)",
    )
    p.add_argument("--workdir", type=Path, help="default: a temp folder, removed after")
    p.add_argument("--json", type=Path, help="also write the figures here")
    return p.parse_args()


def write_corpus(corpus: Path, n: int, folder: Path) -> list[Path]:
    """The first n documents of corpus.jsonl as `<id>.txt`, as bench/ingest_bench.py does."""
    folder.mkdir(parents=True)
    files = []
    path = corpus / "corpus.jsonl" if corpus.is_dir() else corpus
    with path.open(encoding="utf-8") as f:
        for line in f:
            if len(files) == n:
                break
            if not line.strip():
                continue
            row = json.loads(line)
            title, text = row.get("title") or "", row["text"]
            target = folder / f"{row['_id']}.txt"
            target.write_text(f"{title}\n\n{text}" if title else text, encoding="utf-8")
            files.append(target)
    return files


def edit(files: list[Path], fraction: float) -> int:
    """Append a sentence to every k-th file (k = 1 / fraction): spread over the folder."""
    step = max(1, round(1 / fraction))
    edited = files[::step]
    for path in edited:
        path.write_text(path.read_text(encoding="utf-8") + EDIT, encoding="utf-8")
    return len(edited)


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Wall-clock and CPU seconds (user + system, the child and its children) of cmd."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, cpu, proc.stdout


def base_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Bytecode as an installed package has it (pip compiles at install): the repo's
    # src gets its .pyc under the work folder, once, in the warm-up run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(
        INGEST_MODEL_CACHE_DIR=str(root / "model-cache"),
        INGEST_EMBEDDING_THREADS="1",
        INGEST_EMBEDDING_PRECISION="int8",
        INGEST_CONCURRENCY="1",
        OMP_NUM_THREADS="1",
        OMP_THREAD_LIMIT="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def command(system: str, args: argparse.Namespace, docs: Path, state: Path) -> list[str]:
    if system == "ingest":
        return [*shlex.split(args.ingest), "add", str(docs), "--json", "--quiet"]
    runner = str(HERE / "peer_pipelines.py")
    return [sys.executable, runner, system, "--docs", str(docs), "--state", str(state)]


def run_system(system: str, args: argparse.Namespace, root: Path, env: dict[str, str]) -> dict:
    folder = root / system
    shutil.rmtree(folder, ignore_errors=True)
    docs, state = folder / "docs", folder / "state"
    files = write_corpus(args.corpus, args.docs, docs)
    state.mkdir(parents=True)
    env = dict(env, DATABASE_URL=f"sqlite:///{state / 'ingest.db'}")
    out: dict[str, Any] = {"system": system, "docs": len(files)}
    for phase in ("first", "again"):
        if phase == "again":
            out["edited"] = edit(files, args.edit_fraction)
        wall, cpu, stdout = timed(command(system, args, docs, state), env, state)
        out[phase] = {
            "wall": wall,
            "cpu": cpu,
            "report": json.loads(stdout.strip().splitlines()[-1]),
        }
        print(f"  {system} {phase}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    return out


def warm_up(args: argparse.Namespace, root: Path, env: dict[str, str]) -> None:
    """Build the ONNX graph once and record each venv's weights digest, so that no
    timed run pays for a one-time cache fill."""
    timed([sys.executable, str(HERE / "peer_pipelines.py"), "warm-up"], env, root)
    tiny = root / "warm-up"
    tiny.mkdir()
    (tiny / "a.txt").write_text("Warm-up text for the model cache.", encoding="utf-8")
    warm_env = dict(env, DATABASE_URL=f"sqlite:///{root / 'warm-up.db'}")
    timed([*shlex.split(args.ingest), "add", str(tiny), "--quiet"], warm_env, tiny)


def summarise(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Per system: the median over rounds of each figure."""
    table: dict[str, dict[str, float]] = {}
    for system in {r["system"] for r in runs}:
        mine = [r for r in runs if r["system"] == system]
        docs = mine[0]["docs"]

        def med(phase: str, key: str, rs: list[dict] = mine) -> float:
            return statistics.median(r[phase][key] for r in rs)

        table[system] = {
            "first_wall": med("first", "wall"),
            "first_cpu": med("first", "cpu"),
            "docs_per_s": docs / med("first", "wall"),
            "docs_per_cpu_s": docs / med("first", "cpu"),
            "again_wall": med("again", "wall"),
            "again_cpu": med("again", "cpu"),
        }
        peer_first = [r["first"]["report"].get("seconds") for r in mine]
        if peer_first[0] is not None:
            table[system]["first_in_process"] = statistics.median(peer_first)
            table[system]["again_in_process"] = statistics.median(
                r["again"]["report"]["seconds"] for r in mine
            )
    return table


def print_table(table: dict[str, dict[str, float]], runs: list[dict]) -> None:
    print()
    head = "| system | first: wall s | CPU s | docs/s | re-ingest after edit: wall s | CPU s |"
    print(head)
    print("|---" * 6 + "|")
    for system in SYSTEMS:
        if system in table:
            t = table[system]
            print(
                f"| {system} | {t['first_wall']:.2f} | {t['first_cpu']:.2f} | "
                f"{t['docs_per_s']:.1f} | {t['again_wall']:.2f} | {t['again_cpu']:.2f} |"
            )
    print()
    for r in runs:
        f, a = r["first"]["report"], r["again"]["report"]
        print(f"{r['system']}: first {json.dumps(f)}\n    again {json.dumps(a)}")
    if "ingest" not in table:
        return
    ours = table["ingest"]
    print()
    for peer in ("langchain", "llamaindex"):
        if peer in table:
            p = table[peer]
            first = ours["docs_per_s"] / p["docs_per_s"]
            first_cpu = ours["docs_per_cpu_s"] / p["docs_per_cpu_s"]
            again = p["again_wall"] / ours["again_wall"]
            again_cpu = p["again_cpu"] / ours["again_cpu"]
            print(
                f"vs {peer}: first ingest {first:.2f}x its docs/s ({first_cpu:.2f}x by CPU; "
                f"target >= {TARGET_FIRST}), re-ingest {again:.2f}x faster "
                f"({again_cpu:.2f}x by CPU; target >= {TARGET_AGAIN})"
            )


def main() -> None:
    args = parse_args()
    systems = [s for s in args.systems.split(",") if s]
    root = args.workdir or Path(tempfile.mkdtemp(prefix="peers-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    env = base_env(root)
    try:
        warm_up(args, root, env)
        runs = []
        for round_no in range(args.rounds):
            print(f"round {round_no + 1}/{args.rounds}", flush=True)
            runs.extend(run_system(system, args, root, env) for system in systems)
        table = summarise(runs)
        print_table(table, runs)
        if args.json:
            args.json.write_text(json.dumps({"table": table, "runs": runs}, indent=2) + "\n")
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
