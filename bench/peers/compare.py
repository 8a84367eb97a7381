"""ingest against LangChain and LlamaIndex: first ingest, then re-ingest after an edit.

    bench/peers/run.sh [--docs 200] [--rounds 2] [--peer-embedder usual,ingest]
    bench/peers/run.sh --systems ingest --ingest-src /work/main/src   # another checkout

The same SciFact documents (the first N of corpus.jsonl, one `<id>.txt` each: title,
blank line, text), the same model (the hash-pinned all-MiniLM-L6-v2), one thread, one
document at a time. The peers run with either embedder (--peer-embedder, both by
default; see peer_pipelines.py):
  usual   their users' embedder: sentence-transformers on PyTorch (LangChain's
          HuggingFaceEmbeddings, LlamaIndex's HuggingFaceEmbedding), fp32, one torch
          thread, loaded offline from a local sentence-transformers folder built here
          from the weights wheel (SHA-256 checked); the warm-up prints the sanity
          check: their vectors against ingest's fp32 ONNX vectors (cosine ~1);
  ingest  ingest's own ONNX int8 embedder wrapped in their embeddings interface: the
          same runtime in all three, so the comparison is about the pipeline alone.
ingest itself always runs its own embedder: ONNX, int8 by default (its default), fp32
with --ingest-precision fp32 (the bare embedder and the peers' `ingest` variant follow).
For each system, in a fresh folder and a fresh store:
  1. first ingest, in a process of its own: wall-clock and CPU seconds (the child's
     and its children's, from getrusage(RUSAGE_CHILDREN));
  2. 10% of the documents edited (a sentence appended);
  3. re-ingest the folder: ingest by `ingest add` again, the peers by their own
     dedup (LangChain: index() with an SQLRecordManager, cleanup="incremental";
     LlamaIndex: IngestionPipeline with a docstore, UPSERTS).
Each run is a whole process (interpreter, imports, model load, work), as a user runs
it; the peers also report their in-process time after the model is loaded.
ingest runs as `ingest add DIR --json` with INGEST_EMBEDDING_THREADS=1,
INGEST_CONCURRENCY=1 and a new SQLite file; its src is --ingest-src (default: this
checkout's), put first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shlex
import shutil
import sqlite3
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
EMBEDDERS = ("usual", "ingest")
TARGET_FIRST = 1.3  # ingest's docs/s over each peer's, first ingest
TARGET_AGAIN = 3.0  # re-ingest after the edit, times faster than each peer
TARGET_PER_CHUNK = 1.1  # ingest's CPU s per embedded chunk over the bare embedder's


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
    p.add_argument(
        "--peer-embedder",
        default=",".join(EMBEDDERS),
        help="the peers' embedder(s): usual (sentence-transformers on PyTorch), ingest",
    )
    p.add_argument(
        "--ingest-src",
        type=Path,
        default=REPO / "src",
        help="the src folder ingest runs from (PYTHONPATH); default this checkout's",
    )
    p.add_argument(
        "--ingest-precision",
        choices=["int8", "fp32"],
        default="int8",
        help="INGEST_EMBEDDING_PRECISION for ingest (and the bare embedder)",
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


def model_folder(root: Path, ingest_src: Path) -> Path:
    """A sentence-transformers folder of the weights ingest ships (the wheel's files,
    linked, model.safetensors checked against ingest's pinned SHA-256) with the
    modules sentence-transformers reads: Transformer, mean Pooling, Normalize."""
    sys.path.insert(0, str(ingest_src))
    from ingest.embedding.model_files import DEFAULT_MODEL_SHA256, bundled_model_dir

    source = bundled_model_dir()
    digest = hashlib.sha256((source / "model.safetensors").read_bytes()).hexdigest()
    if digest != DEFAULT_MODEL_SHA256:
        sys.exit(f"{source}/model.safetensors is not the pinned all-MiniLM-L6-v2: {digest}")
    folder = root / "all-MiniLM-L6-v2"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "2_Normalize").mkdir()
    for name in (
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "model.safetensors",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
    ):
        if (source / name).is_file():
            (folder / name).symlink_to(source / name)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize",
        },
    ]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    pooling = {
        "word_embedding_dimension": 384,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
    if not (folder / "sentence_bert_config.json").exists():
        (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 256}')
    return folder


def base_env(root: Path, ingest_src: Path, precision: str = "int8") -> dict[str, str]:
    env = dict(os.environ)
    # Bytecode as an installed package has it (pip compiles at install): the repo's
    # src gets its .pyc under the work folder, once, in the warm-up run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    src = str(ingest_src)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(
        INGEST_MODEL_CACHE_DIR=str(root / "model-cache"),
        INGEST_EMBEDDING_THREADS="1",
        INGEST_EMBEDDING_PRECISION=precision,
        INGEST_CONCURRENCY="1",
        OMP_NUM_THREADS="1",
        OMP_THREAD_LIMIT="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        # The peers' usual embedder loads a local folder: never the hub.
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    return env


def command(
    system: str, embedder: str, args: argparse.Namespace, docs: Path, state: Path
) -> list[str]:
    if system == "ingest":
        return [*shlex.split(args.ingest), "add", str(docs), "--json", "--quiet"]
    runner = str(HERE / "peer_pipelines.py")
    return [
        *(sys.executable, runner, system, "--docs", str(docs), "--state", str(state)),
        *("--embedder", embedder, "--model-dir", str(args.model_dir)),
    ]


def label(system: str, embedder: str) -> str:
    return system if system == "ingest" else f"{system}[{embedder}]"


def run_system(
    system: str, embedder: str, args: argparse.Namespace, root: Path, env: dict[str, str]
) -> dict:
    name = label(system, embedder)
    folder = root / name
    shutil.rmtree(folder, ignore_errors=True)
    docs, state = folder / "docs", folder / "state"
    files = write_corpus(args.corpus, args.docs, docs)
    state.mkdir(parents=True)
    env = dict(env, DATABASE_URL=f"sqlite:///{state / 'ingest.db'}")
    out: dict[str, Any] = {"system": name, "docs": len(files)}
    for phase in ("first", "again"):
        if phase == "again":
            out["edited"] = edit(files, args.edit_fraction)
        wall, cpu, stdout = timed(command(system, embedder, args, docs, state), env, state)
        out[phase] = {
            "wall": wall,
            "cpu": cpu,
            "report": json.loads(stdout.strip().splitlines()[-1]),
        }
        print(f"  {name} {phase}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
        if system == "ingest" and phase == "first":
            out["bare"] = bare_embedder(state, env)
    return out


def bare_embedder(state: Path, env: dict[str, str]) -> dict[str, Any]:
    """The chunks ingest just embedded, through the bare embedder (peer_pipelines.py
    bare): its CPU seconds for the embedding alone, the yardstick of the
    CPU-per-chunk target."""
    with sqlite3.connect(state / "ingest.db") as db:
        texts = [row[0] for row in db.execute("SELECT text FROM chunks ORDER BY pk")]
    texts_file = state / "chunk-texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    runner = [sys.executable, str(HERE / "peer_pipelines.py"), "bare", "--texts", str(texts_file)]
    wall, cpu, stdout = timed(runner, env, state)
    report = json.loads(stdout.strip().splitlines()[-1])
    print(
        f"  bare embedder, the same {report['chunks']} chunks: {report['cpu']:.2f} CPU s "
        f"embedding ({cpu:.2f} s for the whole process)",
        flush=True,
    )
    return {"process_wall": wall, "process_cpu": cpu, **report}


def warm_up(args: argparse.Namespace, root: Path, env: dict[str, str]) -> None:
    """Build the ONNX graphs once and compile the bytecode, so that no timed run pays
    for a one-time cache fill; print the usual embedder's sanity check."""
    peers = set(args.systems.split(",")) - {"ingest"}
    for embedder in args.embedders if peers else []:
        runner = [sys.executable, str(HERE / "peer_pipelines.py"), "warm-up"]
        runner += ["--embedder", embedder, "--model-dir", str(args.model_dir)]
        out = json.loads(timed(runner, env, root)[2].strip().splitlines()[-1])
        if "sanity_cosine_min" in out:
            cosines = out["sanity_cosine_min"]
            print(
                "sanity: peers' sentence-transformers vectors against ingest's fp32 ONNX, "
                f"lowest cosine over 3 texts: {json.dumps(cosines)}",
                flush=True,
            )
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
    printed: set[str] = set()
    for system in [label(s, e) for s in SYSTEMS for e in EMBEDDERS]:
        if system in table and (system != "ingest" or system not in printed):
            printed.add(system)
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
    for r in runs:
        if r["system"] == "ingest" and "bare" in r:
            chunks = r["first"]["report"]["embedded"]
            mine, bare = r["first"]["cpu"] / chunks, r["bare"]["cpu"] / r["bare"]["chunks"]
            print(
                f"CPU per embedded chunk: ingest {1000 * mine:.1f} ms (whole `ingest add`, "
                f"{chunks} chunks), bare embedder {1000 * bare:.1f} ms: {mine / bare:.2f}x "
                f"(target <= {TARGET_PER_CHUNK})"
            )
    for peer in [label(s, e) for e in EMBEDDERS for s in SYSTEMS[1:]]:
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
    env = base_env(root, args.ingest_src.resolve(), args.ingest_precision)
    args.embedders = [e for e in args.peer_embedder.split(",") if e]
    try:
        args.model_dir = model_folder(root, args.ingest_src.resolve())
        warm_up(args, root, env)
        runs = []
        plan = [
            (system, embedder)
            for system in systems
            for embedder in (args.embedders if system != "ingest" else ["ingest"])
        ]
        for round_no in range(args.rounds):
            print(f"round {round_no + 1}/{args.rounds}", flush=True)
            runs.extend(run_system(system, embedder, args, root, env) for system, embedder in plan)
        table = summarise(runs)
        print_table(table, runs)
        if args.json:
            args.json.write_text(json.dumps({"table": table, "runs": runs}, indent=2) + "\n")
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
