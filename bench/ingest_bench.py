"""Ingest + search benchmark over a BEIR-layout folder (issue 2).

    .venv/bin/python bench/ingest_bench.py --corpus ../shared/data/scifact \
        [--qrels PATH] [--queries PATH] [--limit N] [--db PATH] [--json PATH]
    .venv/bin/python bench/ingest_bench.py --generate-tiny /tmp/tiny   # smoke run

Each corpus document becomes `<id>.txt` (title, blank line, text) in a temp folder,
then this measures, in one process, with the real offline model:
  1. first ingest through the real Ingestor (docs/s, chunks/s, tokens/s, wall time);
  2. the same chunk texts through the bare embedder in batches of
     embedding_batch_size -> pipeline efficiency = bare embed time / ingest time;
  3. re-ingest of the unchanged corpus (wall time, speed-up over the first);
  4. search latency p50/p99 (hybrid, k=10, query embedding included);
  5. nDCG@10 of keyword, vector and hybrid search against the qrels;
  6. peak RSS of the process.
The model is loaded (and warmed) before anything is timed; its load time is shown apart.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench_common import (
    HITS_FOR_NDCG,
    NDCG_K,
    Qrels,
    beir_root,
    dedupe,
    default_qrels,
    format_table,
    generate_tiny,
    ids_by_filename,
    load_corpus,
    load_qrels,
    load_queries,
    mean,
    ndcg_at_k,
    percentile,
    report,
    restrict_qrels,
    select_docs,
    write_docs,
)
from ingest.cli.follow import add_paths
from ingest.context import Context
from ingest.query.search import SearchMode
from ingest.settings import Settings

MODES: tuple[SearchMode, ...] = ("keyword", "vector", "hybrid")
TARGET_EFFICIENCY = 0.90
TARGET_REINGEST_SPEEDUP = 50.0
COLLECTION = "bench"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--corpus", type=Path, help="BEIR folder (or its corpus.jsonl)")
    p.add_argument("--qrels", type=Path, help="default: <corpus>/qrels/test.tsv, else train.tsv")
    p.add_argument("--queries", type=Path, help="default: <corpus>/queries.jsonl")
    p.add_argument("--limit", type=int, help="ingest only N documents (judged ones first)")
    p.add_argument("--max-queries", type=int, help="score/time at most N queries")
    p.add_argument("--db", type=Path, help="SQLite file to create (kept); default: a temp file")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    p.add_argument(
        "--no-attribution",
        action="store_true",
        help="skip the second bare-embedding pass batched per document (it explains "
        "how much of the efficiency gap is batching)",
    )
    p.add_argument(
        "--generate-tiny",
        type=Path,
        metavar="DIR",
        help="write a tiny BEIR-layout corpus to DIR (and bench it unless --corpus is given)",
    )
    args = p.parse_args(argv)
    if args.generate_tiny is None and args.corpus is None:
        p.error("give --corpus PATH or --generate-tiny DIR")
    return args


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.generate_tiny is not None:
        generate_tiny(args.generate_tiny)
        print(f"wrote a tiny BEIR corpus to {args.generate_tiny}")
    corpus_path: Path = args.corpus or args.generate_tiny
    root = beir_root(corpus_path)
    qrels_path = args.qrels or default_qrels(root)
    queries_path = args.queries or root / "queries.jsonl"

    all_docs = load_corpus(corpus_path)
    qrels_all: Qrels = load_qrels(qrels_path) if qrels_path else {}
    docs = select_docs(all_docs, qrels_all, args.limit)
    qrels = restrict_qrels(qrels_all, (d.id for d in docs))
    queries = load_queries(queries_path) if queries_path.is_file() else {}
    judged = [qid for qid in qrels if qid in queries]
    if args.max_queries is not None:
        judged = judged[: args.max_queries]
    filename_to_id = ids_by_filename(docs)

    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    try:
        db = args.db or work / "bench.db"
        if db.exists():
            raise SystemExit(f"{db} already exists: the first ingest must start empty")
        docs_dir = work / "docs"
        write_docs(docs, docs_dir)
        settings = Settings(
            _env_file=None,  # a local .env must not skew figures
            database_url=f"sqlite:///{db}",
            incoming_dir=work / "incoming",
        )
        print(
            f"corpus {corpus_path}: {len(docs)} of {len(all_docs)} documents; "
            f"{len(judged)} judged queries ({qrels_path}); db {db}",
            flush=True,
        )
        ctx = Context(settings)
        try:
            return measure(
                ctx,
                settings,
                docs_dir,
                len(docs),
                judged,
                queries,
                qrels,
                filename_to_id,
                attribute=not args.no_attribution,
            )
        finally:
            ctx.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(
    ctx: Context,
    settings: Settings,
    docs_dir: Path,
    n_docs: int,
    judged: list[str],
    queries: dict[str, str],
    qrels: Qrels,
    filename_to_id: dict[str, str],
    attribute: bool,
) -> dict[str, Any]:
    fig: dict[str, Any] = {"documents": n_docs, "queries": len(judged)}

    _, fig["model_load_s"] = timed(lambda: ctx.embedder.embed(["warm up the model"]))
    print(f"model loaded in {fig['model_load_s']:.1f} s; first ingest ...", flush=True)

    # 1. first ingest through the real pipeline
    report, t_ingest = timed(lambda: add_paths(ctx, [docs_dir], collection=COLLECTION))
    if report.failed:
        print(f"WARNING: {report.failed} documents failed: {report.errors[:3]}", file=sys.stderr)
    with ctx.store.engine.connect() as conn:
        n_tokens = int(
            conn.execute(sa.text("SELECT coalesce(sum(token_count), 0) FROM chunks")).scalar_one()
        )
        # The texts the pipeline embedded: distinct chunk texts, in ingest order.
        rows = conn.execute(
            sa.text("SELECT document_id, text FROM chunks GROUP BY text_hash ORDER BY min(pk)")
        ).all()
    texts = [text for _, text in rows]
    per_doc: dict[str, list[str]] = {}
    for doc_id, text in rows:
        per_doc.setdefault(doc_id, []).append(text)
    fig.update(
        ingest_s=t_ingest,
        added=report.added,
        failed=report.failed,
        chunks=report.chunks,
        embedded=report.embedded,
        tokens=n_tokens,
        docs_per_s=report.added / t_ingest,
        chunks_per_s=report.chunks / t_ingest,
        tokens_per_s=n_tokens / t_ingest,
    )
    print(f"first ingest {t_ingest:.1f} s; bare embedding ...", flush=True)

    # 2. the same texts through the bare embedder
    batch = settings.embedding_batch_size
    embedder = ctx.embedder

    def embed_all() -> None:
        for start in range(0, len(texts), batch):
            embedder.embed(texts[start : start + batch])

    _, t_bare = timed(embed_all)
    fig.update(
        bare_embed_s=t_bare,
        bare_texts=len(texts),
        bare_texts_per_s=len(texts) / t_bare if t_bare else float("nan"),
        pipeline_efficiency=t_bare / t_ingest,
    )
    print(f"bare embedding {t_bare:.1f} s", flush=True)

    # 2b. attribution: bare embedding batched per document, as the Ingestor batches
    if attribute:

        def embed_per_doc() -> None:
            for doc_texts in per_doc.values():
                for start in range(0, len(doc_texts), batch):
                    embedder.embed(doc_texts[start : start + batch])

        _, t_doc = timed(embed_per_doc)
        fig.update(bare_per_doc_s=t_doc, bare_per_doc_texts_per_s=len(texts) / t_doc)
        print(f"bare embedding per-document batches {t_doc:.1f} s", flush=True)
    print("re-ingest ...", flush=True)

    # 3. re-ingest, nothing changed
    again, t_again = timed(lambda: add_paths(ctx, [docs_dir], collection=COLLECTION))
    fig.update(
        reingest_s=t_again,
        reingest_skipped=again.skipped,
        reingest_embedded=again.embedded,
        reingest_speedup=t_ingest / t_again,
    )

    # 4. search latency: hybrid, k=10, query embedding included
    searcher = ctx.searcher
    texts_q = [queries[q] for q in judged]
    if texts_q:
        searcher.search(texts_q[0], k=10)  # warm caches
    latencies = []
    for text in texts_q:
        start = time.perf_counter()
        searcher.search(text, k=10)
        latencies.append((time.perf_counter() - start) * 1000)
    fig.update(search_p50_ms=percentile(latencies, 50), search_p99_ms=percentile(latencies, 99))
    print(f"search latency over {len(latencies)} queries; scoring ...", flush=True)

    # 5. nDCG@10 per mode
    for mode in MODES:
        scores = []
        for qid in judged:
            hits = searcher.search(queries[qid], k=HITS_FOR_NDCG, mode=mode)
            ranked = dedupe(filename_to_id.get(Path(h.source).name, "?") for h in hits)
            scores.append(ndcg_at_k(ranked, qrels[qid], NDCG_K))
        fig[f"ndcg10_{mode}"] = mean(scores)

    # 6. memory
    fig["peak_rss_mib"] = peak_rss_mib()
    fig["fusion"] = {
        "vector_weight": settings.fusion_vector_weight,
        "keyword_weight": settings.fusion_keyword_weight,
        "rrf_k": settings.fusion_rrf_k,
        "candidates": settings.fusion_candidates,
    }
    return fig


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def render(fig: dict[str, Any]) -> str:
    eff = fig["pipeline_efficiency"]
    speedup = fig["reingest_speedup"]
    best_single = max(fig["ndcg10_keyword"], fig["ndcg10_vector"])
    f = fig["fusion"]
    rows = [
        ("documents / judged queries", f"{fig['documents']} / {fig['queries']}", ""),
        ("model load (not timed below)", f"{fig['model_load_s']:.1f} s", ""),
        ("first ingest wall time", f"{fig['ingest_s']:.1f} s", f"{fig['added']} added"),
        ("first ingest docs/s", f"{fig['docs_per_s']:.2f}", f"{fig['failed']} failed"),
        ("first ingest chunks/s", f"{fig['chunks_per_s']:.2f}", f"{fig['chunks']} chunks"),
        ("first ingest tokens/s", f"{fig['tokens_per_s']:.0f}", f"{fig['tokens']} tokens"),
        ("bare embed texts/s", f"{fig['bare_texts_per_s']:.2f}", f"{fig['bare_texts']} texts"),
        ("bare embed wall time", f"{fig['bare_embed_s']:.1f} s", ""),
        *(
            [
                (
                    "bare embed, per-doc batches",
                    f"{fig['bare_per_doc_texts_per_s']:.2f} texts/s",
                    f"{fig['bare_per_doc_s']:.1f} s; batching as the Ingestor does",
                )
            ]
            if "bare_per_doc_s" in fig
            else []
        ),
        (
            "pipeline efficiency",
            f"{eff:.2f}",
            f">= {TARGET_EFFICIENCY:.2f}: {verdict(eff >= TARGET_EFFICIENCY)}",
        ),
        (
            "re-ingest wall time",
            f"{fig['reingest_s']:.3f} s",
            f"{fig['reingest_skipped']} skipped, {fig['reingest_embedded']} embedded",
        ),
        (
            "re-ingest speed-up",
            f"{speedup:.0f}x",
            f">= {TARGET_REINGEST_SPEEDUP:.0f}x: {verdict(speedup >= TARGET_REINGEST_SPEEDUP)}",
        ),
        ("search p50 (hybrid, k=10)", f"{fig['search_p50_ms']:.1f} ms", "incl. query embedding"),
        ("search p99 (hybrid, k=10)", f"{fig['search_p99_ms']:.1f} ms", ""),
        ("nDCG@10 keyword", f"{fig['ndcg10_keyword']:.4f}", ""),
        ("nDCG@10 vector", f"{fig['ndcg10_vector']:.4f}", ""),
        (
            "nDCG@10 hybrid",
            f"{fig['ndcg10_hybrid']:.4f}",
            f"> both: {verdict(fig['ndcg10_hybrid'] > best_single)}",
        ),
        ("peak RSS", f"{fig['peak_rss_mib']:.0f} MiB", "ru_maxrss of this process"),
        (
            "fusion settings",
            f"w_vec={f['vector_weight']} w_kw={f['keyword_weight']}",
            f"rrf_k={f['rrf_k']} candidates={f['candidates']}",
        ),
    ]
    return format_table(rows, "ingest benchmark")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    fig = run(args)
    report(fig, render(fig), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
