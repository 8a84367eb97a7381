"""Grid-search the hybrid fusion settings on judged queries (issue 2).

    .venv/bin/python bench/tune_fusion.py --db bench/results/scifact.db \
        --corpus ../shared/data/scifact [--qrels qrels/train.tsv] [--eval-qrels qrels/test.tsv]

--db (or --database-url) is a store that already holds the corpus, as
`bench/ingest_bench.py --db PATH` leaves it (documents named `<corpus id>.txt`);
`bench/pg_bench.py hybrid` copies such a store to PostgreSQL and runs this there.

For every query the vector and the keyword rankings are computed ONCE, at the
deepest candidate depth of the grid, through Store.vector_search/keyword_search
(query embedded exactly as Searcher does it); every grid point is then fused in
pure Python with the project's own reciprocal_rank_fusion, replaying
Searcher.search (depth = max(k, candidates), weighted RRF, top k). Chunk hits map
to corpus ids by file name; nDCG@10 is over the de-duplicated documents of the
top HITS_FOR_NDCG chunk hits, as in ingest_bench.py.

Selection: the grid point with the best mean nDCG@10 on the training judgments.
Because the vector/keyword split is chosen on the same queries it is scored on,
the script also reports 5-fold cross-validation (choose on 4/5, score the held-out
fifth) as an unbiased estimate, and --eval-qrels (e.g. the BEIR test split) when
given. Finally it replays the chosen setting through the real Searcher on a sample
of queries to check the simulation matches the product.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench_common import (
    HITS_FOR_NDCG,
    NDCG_K,
    Qrels,
    beir_root,
    dedupe,
    format_table,
    load_qrels,
    load_queries,
    mean,
    ndcg_at_k,
    report,
)
from ingest.context import Context
from ingest.embedding import to_blob
from ingest.query.fusion import reciprocal_rank_fusion
from ingest.query.search import FusionConfig, Searcher
from ingest.settings import Settings

# vector : keyword weight ratio, finer around 1
RATIOS = (0.25, 0.33, 0.5, 0.6, 0.67, 0.75, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)
RRF_KS = (1, 2, 3, 5, 10, 20, 30, 60, 100)
CANDIDATES = (20, 50, 100)
FOLDS = 5


@dataclass(frozen=True, slots=True)
class Point:
    vector_weight: float
    keyword_weight: float
    rrf_k: int
    candidates: int

    @classmethod
    def from_ratio(cls, ratio: float, rrf_k: int, candidates: int) -> Point:
        # Only the ratio matters to the ranking; keep the larger weight at 1.0.
        if ratio >= 1:
            return cls(1.0, round(1 / ratio, 4), rrf_k, candidates)
        return cls(ratio, 1.0, rrf_k, candidates)

    def label(self) -> str:
        return (
            f"w_vec={self.vector_weight:g} w_kw={self.keyword_weight:g} "
            f"rrf_k={self.rrf_k} cand={self.candidates}"
        )


@dataclass(slots=True)
class QueryRankings:
    vector: list[int]  # chunk pks, best first, at the deepest depth
    keyword: list[int]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", type=Path, help="SQLite store holding the ingested corpus")
    where.add_argument("--database-url", help="or any store's DATABASE_URL (PostgreSQL)")
    p.add_argument("--corpus", type=Path, required=True, help="BEIR folder (queries, qrels)")
    p.add_argument("--qrels", type=Path, help="tuning judgments; default qrels/train.tsv")
    p.add_argument("--eval-qrels", type=Path, help="held-out judgments; default qrels/test.tsv")
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--rankings-cache",
        type=Path,
        help="JSON file of the per-query rankings: read if it matches the store, else written",
    )
    return p.parse_args(argv)


def chunk_to_doc(ctx: Context) -> dict[int, str]:
    with ctx.store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT chunks.pk, documents.source_uri FROM chunks "
                "JOIN documents ON documents.id = chunks.document_id"
            )
        )
        # `<corpus id>.txt`: the ids of SciFact (digits) need no escaping.
        return {int(pk): Path(uri).name.removesuffix(".txt") for pk, uri in rows}


def rank_all(ctx: Context, queries: dict[str, str], depth: int) -> dict[str, QueryRankings]:
    store, embedder = ctx.store, ctx.embedder
    out = {}
    for qid, text in queries.items():
        vector = to_blob(embedder.embed_queries([text])[0])
        out[qid] = QueryRankings(
            vector=[pk for pk, _ in store.vector_search(embedder.model_id, vector, depth)],
            keyword=[pk for pk, _ in store.keyword_search(text, depth)],
        )
    return out


def cached_rankings(
    path: Path | None, ctx: Context, queries: dict[str, str], depth: int, n_chunks: int
) -> dict[str, QueryRankings]:
    """rank_all, kept in a JSON file so re-tuning does not re-embed every query."""
    key = {"db": str(ctx.settings.database_url), "chunks": n_chunks, "depth": depth}
    if path is not None and path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == key and set(queries) <= set(saved["rankings"]):
            print(f"rankings read from {path}", flush=True)
            return {
                q: QueryRankings(saved["rankings"][q]["vector"], saved["rankings"][q]["keyword"])
                for q in queries
            }
    rankings = rank_all(ctx, queries, depth)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {q: {"vector": r.vector, "keyword": r.keyword} for q, r in rankings.items()}
        path.write_text(json.dumps({"key": key, "rankings": data}))
    return rankings


def fused_docs(r: QueryRankings, p: Point, pk_doc: dict[int, str], k: int) -> list[str]:
    """Searcher.search(mode="hybrid") replayed on precomputed rankings."""
    depth = max(k, p.candidates)
    fused = reciprocal_rank_fusion(
        [(r.vector[:depth], p.vector_weight), (r.keyword[:depth], p.keyword_weight)],
        k=p.rrf_k,
    )[:k]
    return dedupe(pk_doc[pk] for pk, _ in fused)


def single_docs(ranking: list[int], pk_doc: dict[int, str], k: int) -> list[str]:
    return dedupe(pk_doc[pk] for pk in ranking[:k])


def score_grid(
    points: Sequence[Point],
    rankings: dict[str, QueryRankings],
    qrels: Qrels,
    pk_doc: dict[int, str],
) -> dict[Point, dict[str, float]]:
    """Per grid point, per query nDCG@10."""
    return {
        p: {
            qid: ndcg_at_k(fused_docs(rankings[qid], p, pk_doc, HITS_FOR_NDCG), qrels[qid], NDCG_K)
            for qid in qrels
        }
        for p in points
    }


def single_mode_scores(
    rankings: dict[str, QueryRankings], qrels: Qrels, pk_doc: dict[int, str]
) -> dict[str, dict[str, float]]:
    return {
        mode: {
            qid: ndcg_at_k(
                single_docs(getattr(rankings[qid], mode), pk_doc, HITS_FOR_NDCG),
                qrels[qid],
                NDCG_K,
            )
            for qid in qrels
        }
        for mode in ("keyword", "vector")
    }


def fold_of(qid: str) -> int:
    return int(hashlib.sha256(qid.encode()).hexdigest(), 16) % FOLDS


def best_point(grid: dict[Point, dict[str, float]], qids: Sequence[str]) -> Point:
    return max(grid, key=lambda p: mean([grid[p][q] for q in qids]))


def cross_validate(grid: dict[Point, dict[str, float]], qids: Sequence[str]) -> dict[str, Any]:
    held_out: dict[str, float] = {}
    chosen = []
    for fold in range(FOLDS):
        train = [q for q in qids if fold_of(q) != fold]
        test = [q for q in qids if fold_of(q) == fold]
        p = best_point(grid, train)
        chosen.append(p.label())
        held_out.update({q: grid[p][q] for q in test})
    return {"ndcg10": mean(list(held_out.values())), "chosen_per_fold": chosen}


def check_against_searcher(
    ctx: Context,
    p: Point,
    rankings: dict[str, QueryRankings],
    queries: dict[str, str],
    pk_doc: dict[int, str],
    qids: Sequence[str],
) -> int:
    """Replay through the real Searcher; returns how many queries disagree."""
    searcher = Searcher(
        ctx.store,
        ctx.embedder,
        FusionConfig(
            rrf_k=p.rrf_k,
            vector_weight=p.vector_weight,
            keyword_weight=p.keyword_weight,
            candidates=p.candidates,
        ),
    )
    mismatches = 0
    for qid in qids:
        real = [h.chunk_id for h in searcher.search(queries[qid], k=HITS_FOR_NDCG)]
        hits = ctx.store.hits(
            [pk for pk in rankings[qid].vector + rankings[qid].keyword if pk in pk_doc]
        )
        depth = max(HITS_FOR_NDCG, p.candidates)
        sim_pks = [
            pk
            for pk, _ in reciprocal_rank_fusion(
                [
                    (rankings[qid].vector[:depth], p.vector_weight),
                    (rankings[qid].keyword[:depth], p.keyword_weight),
                ],
                k=p.rrf_k,
            )[:HITS_FOR_NDCG]
        ]
        mismatches += real != [hits[pk].chunk_id for pk in sim_pks]
    return mismatches


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = beir_root(args.corpus)
    queries = load_queries(root / "queries.jsonl")
    tune_path = args.qrels or root / "qrels" / "train.tsv"
    eval_path = args.eval_qrels or root / "qrels" / "test.tsv"
    tune_qrels = {q: r for q, r in load_qrels(tune_path).items() if q in queries}
    eval_qrels = (
        {q: r for q, r in load_qrels(eval_path).items() if q in queries}
        if eval_path.is_file()
        else {}
    )
    settings = Settings(
        _env_file=None,
        database_url=args.database_url or f"sqlite:///{args.db}",
        incoming_dir=Path(tempfile.gettempdir()) / "ingest-tune-incoming",
    )
    ctx = Context(settings)
    try:
        pk_doc = chunk_to_doc(ctx)
        if not pk_doc:
            raise SystemExit(f"{settings.database_url} holds no chunks: ingest the corpus first")
        depth = max(max(CANDIDATES), HITS_FOR_NDCG)
        needed = {q: queries[q] for q in [*tune_qrels, *eval_qrels]}
        print(f"ranking {len(needed)} queries at depth {depth} ...", flush=True)
        start = time.perf_counter()
        rankings = cached_rankings(args.rankings_cache, ctx, needed, depth, len(pk_doc))
        t_rank = time.perf_counter() - start

        points = [
            Point.from_ratio(r, k, c) for r, k, c in itertools.product(RATIOS, RRF_KS, CANDIDATES)
        ]
        start = time.perf_counter()
        grid = score_grid(points, rankings, tune_qrels, pk_doc)
        t_grid = time.perf_counter() - start
        tune_ids = list(tune_qrels)
        chosen = best_point(grid, tune_ids)
        default = Point(1.0, 1.0, 60, 50)
        current = Point(**settings.fusion())
        extra = [p for p in (default, current) if p not in grid]
        grid.update(score_grid(extra, rankings, tune_qrels, pk_doc))
        singles = single_mode_scores(rankings, tune_qrels, pk_doc)

        ranked_points = sorted(grid, key=lambda p: mean(list(grid[p].values())), reverse=True)
        fig: dict[str, Any] = {
            "tune_qrels": str(tune_path),
            "tune_queries": len(tune_ids),
            "grid_points": len(points),
            "rank_s": t_rank,
            "grid_s": t_grid,
            "chosen": asdict(chosen),
            "train": {
                "keyword": mean(list(singles["keyword"].values())),
                "vector": mean(list(singles["vector"].values())),
                "hybrid_chosen": mean(list(grid[chosen].values())),
                "hybrid_default_1_1_60_50": mean(list(grid[default].values())),
                "hybrid_settings": mean(list(grid[current].values())),
            },
            "settings": asdict(current),
            "top10": [(p.label(), mean(list(grid[p].values()))) for p in ranked_points[:10]],
            "cv": cross_validate(grid, tune_ids),
        }
        # Sensitivity: the best per ratio (other settings free) and per rrf_k.
        fig["best_by_ratio"] = {
            str(r): max(
                mean(list(grid[p].values()))
                for p in points
                if p == Point.from_ratio(r, p.rrf_k, p.candidates)
            )
            for r in RATIOS
        }
        fig["best_by_rrf_k"] = {
            str(k): max(mean(list(grid[p].values())) for p in points if p.rrf_k == k)
            for k in RRF_KS
        }
        if eval_qrels:
            ev = score_grid([chosen, default], rankings, eval_qrels, pk_doc)
            ev_single = single_mode_scores(rankings, eval_qrels, pk_doc)
            fig["eval"] = {
                "qrels": str(eval_path),
                "queries": len(eval_qrels),
                "keyword": mean(list(ev_single["keyword"].values())),
                "vector": mean(list(ev_single["vector"].values())),
                "hybrid_chosen": mean(list(ev[chosen].values())),
                "hybrid_default_1_1_60_50": mean(list(ev[default].values())),
            }
        sample = tune_ids[:100]
        fig["searcher_mismatches"] = check_against_searcher(
            ctx, chosen, rankings, queries, pk_doc, sample
        )
        fig["searcher_checked"] = len(sample)
        return fig
    finally:
        ctx.close()


def render(fig: dict[str, Any]) -> str:
    c = fig["chosen"]
    tr = fig["train"]
    rows = [
        ("tuning judgments", fig["tune_qrels"], f"{fig['tune_queries']} queries"),
        (
            "grid",
            f"{fig['grid_points']} points",
            f"ranking {fig['rank_s']:.0f} s, fusing {fig['grid_s']:.0f} s",
        ),
        (
            "chosen",
            f"w_vec={c['vector_weight']:g} w_kw={c['keyword_weight']:g}",
            f"rrf_k={c['rrf_k']} candidates={c['candidates']}",
        ),
        ("train nDCG@10 keyword", f"{tr['keyword']:.4f}", ""),
        ("train nDCG@10 vector", f"{tr['vector']:.4f}", ""),
        ("train nDCG@10 hybrid (1,1,60,50)", f"{tr['hybrid_default_1_1_60_50']:.4f}", "old"),
        ("train nDCG@10 hybrid (chosen)", f"{tr['hybrid_chosen']:.4f}", "optimistic: tuned here"),
        (
            "train nDCG@10 hybrid (settings)",
            f"{tr['hybrid_settings']:.4f}",
            Point(**fig["settings"]).label(),
        ),
        (
            f"{FOLDS}-fold CV nDCG@10 hybrid",
            f"{fig['cv']['ndcg10']:.4f}",
            "chosen on 4/5, scored on the held-out 1/5",
        ),
    ]
    if "eval" in fig:
        ev = fig["eval"]
        rows += [
            ("eval judgments", ev["qrels"], f"{ev['queries']} queries"),
            ("eval nDCG@10 keyword", f"{ev['keyword']:.4f}", ""),
            ("eval nDCG@10 vector", f"{ev['vector']:.4f}", ""),
            ("eval nDCG@10 hybrid (1,1,60,50)", f"{ev['hybrid_default_1_1_60_50']:.4f}", "old"),
            ("eval nDCG@10 hybrid (chosen)", f"{ev['hybrid_chosen']:.4f}", ""),
        ]
    else:
        rows.append(("eval judgments", "none", "no qrels/test.tsv here"))
    rows.append(
        (
            "simulation == Searcher",
            f"{fig['searcher_checked'] - fig['searcher_mismatches']}/{fig['searcher_checked']}",
            "queries with identical top-20",
        )
    )
    out = [format_table(rows, "fusion tuning")]
    out.append("\ntop 10 grid points (train nDCG@10):")
    out += [f"  {score:.4f}  {label}" for label, score in fig["top10"]]
    out.append(
        "best by vector:keyword ratio: "
        + ", ".join(f"{r}:{s:.4f}" for r, s in fig["best_by_ratio"].items())
    )
    out.append(
        "best by rrf_k: " + ", ".join(f"{k}:{s:.4f}" for k, s in fig["best_by_rrf_k"].items())
    )
    out.append("CV choices per fold: " + "; ".join(fig["cv"]["chosen_per_fold"]))
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    fig = run(args)
    report(fig, render(fig), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
