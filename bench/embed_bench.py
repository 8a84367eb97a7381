"""Embedding runtimes compared on the same chunks (issue: embedding without PyTorch).

    .venv/bin/python bench/embed_bench.py speed --corpus ../shared/data/scifact [--texts 400]
        [--runtimes torch,onnx-fp32,onnx-int8] [--threads 1] [--batch 8] [--json PATH]
    .venv/bin/python bench/embed_bench.py quality --corpus ../shared/data/scifact \\
        --db /tmp/scifact-embed.db [--runtimes onnx-int8,onnx-fp32] [--json PATH]
    .venv/bin/python bench/embed_bench.py executor --corpus ../shared/data/scifact \\
        [--texts 192] [--callers 2] [--threads 1]

speed: the first --texts chunks of the corpus (chunked by the product's own chunker,
so they are the texts ingestion embeds), embedded by each runtime in a process of its
own: model load time once the graph cache is built (the build itself is timed apart),
sentences/s, CPU ms per sentence, peak RSS of that process, and cosine to the ONNX
fp32 vectors (mean, min). A runtime that is not installed (torch) is reported as such.

quality: SciFact train nDCG@10, vector-only and hybrid with the default fusion
settings, through bench/tune_fusion.py's machinery (rankings through Store, fusion
replayed as Searcher does it). The corpus is ingested once into --db through the
product (add_paths) with the first runtime; every other runtime embeds the same
chunk texts into the same store under its own model id, so all are scored on
identical chunks and keyword rankings. The store is kept: a rerun only scores.

executor: --callers threads (a worker's job threads) each embed their share of the
chunks batch by batch, through the bare ONNX embedder (each caller runs the model
itself: callers x threads threads at once) and through the process's shared
executor (embedding/batcher.py: CPUs / threads runners), alternately, twice.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from bench_common import (
    beir_root,
    format_table,
    load_corpus,
    load_qrels,
    load_queries,
    mean,
    report,
    write_docs,
)
from ingest.context import Context
from ingest.embedding import build_embedder, to_blob
from ingest.settings import Settings
from tune_fusion import Point, chunk_to_doc, rank_all, score_grid, single_mode_scores

RUNTIMES = ("torch", "onnx-fp32", "onnx-int8")
REFERENCE = "onnx-fp32"
TARGET_HYBRID = 0.7193  # torch fp32 vectors, docs/benchmarks.md
COLLECTION = "bench"


def settings_for(runtime: str, **extra: Any) -> Settings:
    engine, _, precision = runtime.partition("-")
    return Settings(
        _env_file=None,  # a local .env must not skew figures
        embedding_runtime=engine,
        embedding_precision=precision or "fp32",
        **extra,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("command", choices=["speed", "quality", "executor", "_measure"])
    p.add_argument("--corpus", type=Path, help="BEIR folder (corpus.jsonl, queries, qrels)")
    p.add_argument("--runtimes", default=",".join(RUNTIMES))
    p.add_argument("--texts", type=int, default=400, help="speed: how many chunks")
    p.add_argument("--threads", type=int, default=1, help="INGEST_EMBEDDING_THREADS")
    p.add_argument("--callers", type=int, default=2, help="executor: concurrent job threads")
    p.add_argument("--batch", type=int, default=8, help="INGEST_EMBEDDING_BATCH_SIZE")
    p.add_argument("--db", type=Path, help="quality: SQLite store (created once, then reused)")
    p.add_argument("--json", type=Path)
    p.add_argument("--texts-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --- speed ----------------------------------------------------------------------


def chunk_texts(corpus: Path, limit: int) -> list[str]:
    from ingest.context import build_pipeline

    settings = settings_for(REFERENCE)
    pipeline = build_pipeline(settings, build_embedder(settings))
    texts: list[str] = []
    for doc in load_corpus(corpus):
        segments = pipeline.parse(doc.as_text().encode(), "doc.txt")
        texts.extend(c.text for c in pipeline.chunk(segments))
        if len(texts) >= limit:
            break
    return texts[:limit]


def measure_one(args: argparse.Namespace) -> None:
    """In a fresh process: one runtime's figures, its vectors saved for the parent."""
    texts = json.loads(args.texts_file.read_text())
    settings = settings_for(args.runtimes, embedding_threads=args.threads)
    settings = settings.model_copy(update={"embedding_batch_size": args.batch})
    embedder = build_embedder(settings)
    started = time.perf_counter()
    embedder.warm_up()
    load_s = time.perf_counter() - started
    cpu, wall = time.process_time(), time.perf_counter()
    vectors = embedder.embed(texts)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    np.save(args.out, vectors)
    figures = {
        "model_id": embedder.model_id,
        "load_s": load_s,
        "sentences_per_s": len(texts) / wall,
        "cpu_ms_per_sentence": 1000 * cpu / len(texts),
        "peak_rss_mib": peak_rss_mib(),
    }
    print("FIGURES " + json.dumps(figures), flush=True)


def peak_rss_mib() -> float:
    """This process's own peak RSS. Not ru_maxrss: Linux keeps that across execve, so
    a child would report its parent's peak when that was higher."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_speed(args: argparse.Namespace) -> dict[str, Any]:
    texts = chunk_texts(args.corpus, args.texts)
    print(f"{len(texts)} chunks of {args.corpus}", flush=True)
    with tempfile.TemporaryDirectory(prefix="embed-bench-") as tmp:
        return _speed_in(Path(tmp), texts, args)


def _speed_in(work: Path, texts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    (work / "texts.json").write_text(json.dumps(texts))
    results: dict[str, Any] = {"texts": len(texts), "threads": args.threads, "batch": args.batch}
    vectors: dict[str, np.ndarray[Any, Any]] = {}
    for runtime in args.runtimes.split(","):
        build_s = _build_cache(runtime)
        out = work / f"{runtime}.npy"
        proc = subprocess.run(
            [sys.executable, __file__, "_measure", "--runtimes", runtime, "--texts-file",
             str(work / "texts.json"), "--out", str(out), "--threads", str(args.threads),
             "--batch", str(args.batch)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        line = next((x for x in proc.stdout.splitlines() if x.startswith("FIGURES ")), None)
        if proc.returncode != 0 or line is None:
            results[runtime] = {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
            print(f"{runtime}: {results[runtime]['error']}", flush=True)
            continue
        results[runtime] = {**json.loads(line.removeprefix("FIGURES ")), "build_s": build_s}
        vectors[runtime] = np.load(out)
        print(f"{runtime}: {results[runtime]}", flush=True)
    reference = vectors.get(REFERENCE)
    for runtime, v in vectors.items():
        if reference is not None:
            cosines = (v * reference).sum(axis=1)
            results[runtime]["cosine_mean"] = float(cosines.mean())
            results[runtime]["cosine_min"] = float(cosines.min())
    return results


def _build_cache(runtime: str) -> float | None:
    """Build the ONNX graph (if not cached) before timing a load; returns its time."""
    if not runtime.startswith("onnx"):
        return None
    started = time.perf_counter()
    embedder = build_embedder(settings_for(runtime))
    embedder.warm_up()
    return time.perf_counter() - started


def speed_table(r: dict[str, Any]) -> str:
    rows = [("runtime", "figures", "")]
    for runtime in RUNTIMES:
        f = r.get(runtime)
        if f is None:
            continue
        if "error" in f:
            rows.append((runtime, f"not measured: {f['error']}", ""))
            continue
        rows.append(
            (
                runtime,
                f"{f['sentences_per_s']:.1f} sent/s, {f['cpu_ms_per_sentence']:.0f} CPU ms/sent, "
                f"peak RSS {f['peak_rss_mib']:.0f} MiB, load {f['load_s']:.2f} s",
                f"cosine to fp32 mean {f.get('cosine_mean', float('nan')):.4f} "
                f"min {f.get('cosine_min', float('nan')):.4f}",
            )
        )
    return format_table(rows, f"{r['texts']} chunks, {r['threads']} thread(s), batch {r['batch']}")


# --- executor -------------------------------------------------------------------


def run_executor(args: argparse.Namespace) -> dict[str, Any]:
    import threading

    from ingest.embedding.batcher import SharedBatcher, available_cpus

    texts = chunk_texts(args.corpus, args.texts)
    embedder = build_embedder(settings_for("onnx-int8", embedding_threads=args.threads))
    embedder.warm_up()
    runners = max(1, available_cpus() // args.threads)
    shares = [texts[i :: args.callers] for i in range(args.callers)]
    results: dict[str, Any] = {"texts": len(texts), "callers": args.callers}
    results["threads"], results["runners"] = args.threads, runners

    def timed_run(target: Any) -> dict[str, float]:
        def caller(share: list[str]) -> None:
            for start in range(0, len(share), args.batch):
                target.embed(share[start : start + args.batch])

        threads = [threading.Thread(target=caller, args=(s,)) for s in shares]
        wall, cpu = time.perf_counter(), time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {
            "sentences_per_s": len(texts) / wall,
            "cpu_ms_per_sentence": 1000 * cpu / len(texts),
        }

    for round_ in (1, 2):
        results[f"bare_{round_}"] = timed_run(embedder)
        batcher = SharedBatcher(embedder, batch_size=1, runners=runners)  # as Context builds it
        results[f"executor_{round_}"] = timed_run(batcher)
        batcher.close()
        print(results, flush=True)
    return results


def executor_table(r: dict[str, Any]) -> str:
    rows = [("path", "sent/s", "CPU ms/sent")]
    for key in ("bare_1", "executor_1", "bare_2", "executor_2"):
        f = r[key]
        rows.append((key, f"{f['sentences_per_s']:.1f}", f"{f['cpu_ms_per_sentence']:.0f}"))
    title = (
        f"{r['texts']} chunks, {r['callers']} callers, {r['threads']} thread(s) per run, "
        f"{r['runners']} runner(s)"
    )
    return format_table(rows, title)


# --- quality --------------------------------------------------------------------


def run_quality(args: argparse.Namespace) -> dict[str, Any]:
    root = beir_root(args.corpus)
    queries = load_queries(root / "queries.jsonl")
    qrels = {q: r for q, r in load_qrels(root / "qrels" / "train.tsv").items() if q in queries}
    runtimes = args.runtimes.split(",")
    results: dict[str, Any] = {"queries": len(qrels)}
    for runtime in runtimes:
        settings = settings_for(
            runtime,
            database_url=f"sqlite:///{args.db}",
            incoming_dir=args.db.parent / "embed-bench-incoming",
            embedding_threads=args.threads,
        )
        ctx = Context(settings)
        try:
            if not _has_documents(ctx):
                _ingest(ctx, args.corpus)
            embedded = _embed_missing(ctx)
            results[runtime] = {"model_id": ctx.embedder.model_id, "embedded_now": embedded}
            results[runtime].update(_score(ctx, queries, qrels))
            print(f"{runtime}: {results[runtime]}", flush=True)
        finally:
            ctx.close()
    return results


def _has_documents(ctx: Context) -> bool:
    with ctx.store.engine.connect() as conn:
        return bool(conn.execute(sa.text("SELECT count(*) FROM documents")).scalar_one())


def _ingest(ctx: Context, corpus: Path) -> None:
    from ingest.cli.follow import add_paths

    with tempfile.TemporaryDirectory(prefix="embed-bench-docs-") as tmp:
        write_docs(load_corpus(corpus), Path(tmp))
        started = time.perf_counter()
        report_ = add_paths(ctx, [Path(tmp)], collection=COLLECTION)
        print(f"ingested {report_.added} docs in {time.perf_counter() - started:.0f} s", flush=True)


def _embed_missing(ctx: Context) -> int:
    """Vectors of this runtime's model id for every chunk text that has none."""
    embedder, model = ctx.embedder, ctx.embedder.model_id
    with ctx.store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT text_hash, min(text) FROM chunks GROUP BY text_hash"))
        by_hash = {h: t for h, t in rows}
    cached = ctx.store.cached_vectors(model, by_hash)
    missing = [(h, t) for h, t in by_hash.items() if h not in cached]
    started = time.perf_counter()
    for start in range(0, len(missing), 256):
        batch = missing[start : start + 256]
        vectors = embedder.embed([t for _, t in batch])
        blobs = {h: to_blob(v) for (h, _), v in zip(batch, vectors, strict=True)}
        ctx.store.put_vectors(model, int(vectors.shape[1]), blobs)
        done = start + len(batch)
        rate = done / (time.perf_counter() - started)
        print(f"  {model}: {done}/{len(missing)} ({rate:.1f}/s)", flush=True)
    return len(missing)


def _score(
    ctx: Context, queries: dict[str, str], qrels: dict[str, dict[str, int]]
) -> dict[str, float]:
    s = ctx.settings
    point = Point(
        s.fusion_vector_weight, s.fusion_keyword_weight, s.fusion_rrf_k, s.fusion_candidates
    )
    rankings = rank_all(ctx, {q: queries[q] for q in qrels}, point.candidates)
    pk_doc = chunk_to_doc(ctx)
    singles = single_mode_scores(rankings, qrels, pk_doc)
    hybrid = score_grid([point], rankings, qrels, pk_doc)[point]
    return {
        "keyword_ndcg10": mean(list(singles["keyword"].values())),
        "vector_ndcg10": mean(list(singles["vector"].values())),
        "hybrid_ndcg10": mean(list(hybrid.values())),
    }


def quality_table(r: dict[str, Any]) -> str:
    rows = [("runtime", "nDCG@10 vector / hybrid", f"hybrid target {TARGET_HYBRID} ± 0.005")]
    for runtime, f in r.items():
        if not isinstance(f, dict):
            continue
        met = abs(f["hybrid_ndcg10"] - TARGET_HYBRID) <= 0.005
        rows.append(
            (
                runtime,
                f"{f['vector_ndcg10']:.4f} / {f['hybrid_ndcg10']:.4f}",
                "met" if met else "NOT met",
            )
        )
    return format_table(rows, f"SciFact train, {r['queries']} queries")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.command == "_measure":
        measure_one(args)
    elif args.command == "speed":
        figures = run_speed(args)
        report(figures, speed_table(figures), args.json)
    elif args.command == "executor":
        figures = run_executor(args)
        report(figures, executor_table(figures), args.json)
    else:
        if args.db is None:
            raise SystemExit("quality needs --db PATH")
        figures = run_quality(args)
        report(figures, quality_table(figures), args.json)


if __name__ == "__main__":
    main()
