"""Search latency at scale: 100k synthetic chunks in a real store (issue 2).

    .venv/bin/python bench/search_scale.py [--chunks 100000] [--db PATH]
        [--text-source ../shared/data/scifact/corpus.jsonl] [--queries 200] [--json PATH]

Builds (or reuses, with --db) a SQLite store holding N chunks written through the
Store API -- `tx.documents.replace` with many ChunkRecords per document and
`Store.put_vectors` keyed by the real embedder's model_id -- with clustered random
unit vectors (one topic cluster per document, noise around it) and realistic text:
sentences sampled from --text-source (a BEIR corpus.jsonl or any text file) or,
without it, Zipf-distributed words from a generated vocabulary.

Then it times, per query (p50/p99, after one warm-up query whose time is shown apart):
  - the query embedding alone (real model);
  - Store.vector_search and Store.keyword_search alone (depth = fusion_candidates);
  - Searcher.search end to end (k=10) in hybrid, vector and keyword mode,
    each including the query embedding where the mode needs it;
then, as "before" figures, the queries Store ran before the vector cache and the
bm25() rewrite (EXACT_SCAN_SQL, KEYWORD_RANK_JOIN_SQL below), and checks that
Store.vector_search returns the exact scan's chunks, scores and order for every
query (ties between equal scores may come in another order).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from bench_common import format_table, percentile, report
from ingest.context import Context
from ingest.embedding import to_blob
from ingest.pipeline.chunking import text_hash
from ingest.settings import Settings
from ingest.store import ChunkRecord, Store
from ingest.store.keywords import fts5_match_expression

TARGET_P50_MS = 50.0
COLLECTION = "scale"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

# The reference: the exact scan through sqlite-vec, as Store.vector_search did it first.
EXACT_SCAN_SQL = """
SELECT chunks.pk, vec_distance_cosine(vectors.embedding, :q) AS distance
FROM chunks
JOIN documents ON documents.id = chunks.document_id
JOIN collections ON collections.id = documents.collection_id
JOIN vectors ON vectors.model = :model AND vectors.text_hash = chunks.text_hash
ORDER BY distance
LIMIT :k
"""


# The keyword query as Store.keyword_search ran it first.
KEYWORD_RANK_JOIN_SQL = """
SELECT chunks.pk, chunk_fts.rank
FROM chunk_fts
JOIN chunks ON chunks.pk = chunk_fts.rowid
JOIN documents ON documents.id = chunks.document_id
JOIN collections ON collections.id = documents.collection_id
WHERE chunk_fts MATCH :q
ORDER BY chunk_fts.rank
LIMIT :k
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--chunks-per-doc", type=int, default=50)
    p.add_argument("--clusters", type=int, default=64)
    p.add_argument("--noise", type=float, default=0.8, help="spread around each cluster")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--text-source", type=Path, help="corpus.jsonl or a text file")
    p.add_argument("--db", type=Path, help="SQLite file; reused if it holds --chunks chunks")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path)
    return p.parse_args(argv)


# --- synthetic text -----------------------------------------------------------------


class TextSource:
    """Sentences to build chunks and queries from."""

    def __init__(self, path: Path | None, rng: random.Random) -> None:
        self.rng = rng
        self.sentences = self._sentences_from(path) if path else []
        if not self.sentences:
            self.vocabulary, self.weights = self._zipf_vocabulary(30_000)

    @staticmethod
    def _sentences_from(path: Path) -> list[str]:
        sentences: list[str] = []
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                text = line
                if path.suffix == ".jsonl" and line.strip():
                    row = json.loads(line)
                    text = f"{row.get('title', '')}. {row.get('text', '')}"
                sentences.extend(s.strip() for s in _SENTENCE_END.split(text) if len(s) > 20)
        return sentences

    def _zipf_vocabulary(self, n: int) -> tuple[list[str], list[float]]:
        syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["th", "st", "er"]
        words: set[str] = set()
        while len(words) < n:
            words.add("".join(self.rng.choices(syllables, k=self.rng.randint(1, 4))))
        vocabulary = sorted(words, key=len)  # short words are the frequent ones
        weights = [1.0 / (rank**1.07) for rank in range(1, n + 1)]
        return vocabulary, weights

    def sentence(self) -> str:
        if self.sentences:
            return self.rng.choice(self.sentences)
        words = self.rng.choices(self.vocabulary, self.weights, k=self.rng.randint(8, 22))
        return " ".join(words).capitalize() + "."

    def chunk(self) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(4, 8)))

    def query(self) -> str:
        words = self.sentence().rstrip(".").split()
        n = self.rng.randint(5, 12)
        start = self.rng.randint(0, max(0, len(words) - n))
        return " ".join(words[start : start + n])


# --- building the store ----------------------------------------------------------------


def count_chunks(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM chunks")).scalar_one())


def build(
    store: Store, model: str, dim: int, args: argparse.Namespace, source: TextSource
) -> float:
    rng = np.random.default_rng(args.seed)
    centroids = rng.standard_normal((args.clusters, dim)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    per_doc = args.chunks_per_doc
    n_docs = -(-args.chunks // per_doc)
    start = time.perf_counter()
    written = 0
    for d in range(n_docs):
        n = min(per_doc, args.chunks - written)
        cluster = centroids[int(rng.integers(args.clusters))]
        noise = rng.standard_normal((n, dim)).astype(np.float32) * (args.noise / np.sqrt(dim))
        vecs = cluster + noise
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        source_uri = f"synthetic://doc/{d:06d}"
        rows = []
        by_hash: dict[str, bytes] = {}
        for i in range(n):
            text = source.chunk()
            h = text_hash(text)
            rows.append(
                ChunkRecord(
                    id=hashlib.sha256(f"{source_uri}:{i}".encode()).hexdigest()[:32],
                    ordinal=i,
                    text=text,
                    text_hash=h,
                    token_count=len(text.split()),
                    page=None,
                    heading=None,
                )
            )
            by_hash[h] = to_blob(vecs[i])
        store.put_vectors(model, dim, by_hash)
        with store.transaction() as tx:
            tx.documents.replace(
                collection=COLLECTION,
                source_uri=source_uri,
                content_hash=hashlib.sha256(source_uri.encode()).hexdigest(),
                fingerprint="synthetic",
                size_bytes=sum(len(r.text) for r in rows),
                metadata={"cluster_doc": d % 10},
                chunk_rows=rows,
            )
        written += n
        if d % 200 == 0:
            print(f"  {written:,} / {args.chunks:,} chunks", flush=True)
    return time.perf_counter() - start


# --- measuring -----------------------------------------------------------------------


def time_each(fn: Callable[[Any], Any], items: Sequence[Any]) -> tuple[float, list[float]]:
    """(first call ms, [ms of every call after the first, over all items])."""
    start = time.perf_counter()
    fn(items[0])
    first = (time.perf_counter() - start) * 1000
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - start) * 1000)
    return first, times


def same_up_to_ties(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> bool:
    """Same scores in the same order, and the same chunks at each score."""
    if [s for _, s in got] != [s for _, s in want]:
        return False
    groups: dict[float, set[int]] = {}
    for pk, score in want:
        groups.setdefault(score, set()).add(pk)
    return all(pk in groups[score] for pk, score in got)


def old_keyword_search(store: Store, query: str, k: int) -> list[tuple[int, float]]:
    match = fts5_match_expression(query)
    if not match:
        return []
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text(KEYWORD_RANK_JOIN_SQL), {"q": match, "k": k})
        return [(int(r.pk), -float(r.rank)) for r in rows]


def exact_scan(store: Store, model: str, blob: bytes, k: int) -> list[tuple[int, float]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text(EXACT_SCAN_SQL), {"q": blob, "model": model, "k": k})
        return [(int(r.pk), 1.0 - float(r.distance)) for r in rows]


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    source = TextSource(args.text_source, rng)
    work = Path(tempfile.mkdtemp(prefix="ingest-scale-"))
    db = args.db or work / "scale.db"
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{db}",
        incoming_dir=work / "incoming",
    )
    ctx = Context(settings)
    fig: dict[str, Any] = {"chunks_target": args.chunks, "db": str(db)}
    try:
        store, embedder = ctx.store, ctx.embedder
        model = embedder.model_id
        dim = embedder.dimensions  # loads the model
        have = count_chunks(store)
        if have == 0:
            print(f"building {args.chunks:,} chunks in {db} ...", flush=True)
            fig["build_s"] = build(store, model, dim, args, source)
        elif have != args.chunks:
            raise SystemExit(f"{db} holds {have} chunks, not {args.chunks}: use a fresh --db")
        else:
            print(f"reusing {db} ({have:,} chunks)", flush=True)
        fig["chunks"] = count_chunks(store)
        fig["db_mib"] = sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20

        queries = [source.query() for _ in range(args.queries)]
        depth = max(10, settings.fusion_candidates)
        vectors = {q: to_blob(embedder.embed_queries([q])[0]) for q in queries}
        searcher = ctx.searcher

        measures: dict[str, Callable[[str], Any]] = {
            "query embedding": lambda q: embedder.embed_queries([q]),
            "Store.vector_search": lambda q: store.vector_search(model, vectors[q], depth),
            "Store.keyword_search": lambda q: store.keyword_search(q, depth),
            "search hybrid": lambda q: searcher.search(q, k=10, mode="hybrid"),
            "search vector": lambda q: searcher.search(q, k=10, mode="vector"),
            "search keyword": lambda q: searcher.search(q, k=10, mode="keyword"),
        }
        results: dict[str, dict[str, float]] = {}
        for name, fn in measures.items():
            first, times = time_each(fn, queries)
            results[name] = {
                "first_ms": first,
                "p50_ms": percentile(times, 50),
                "p99_ms": percentile(times, 99),
            }
            print(f"  {name}: p50 {results[name]['p50_ms']:.1f} ms", flush=True)
        fig["latency"] = results

        # The queries Store ran before this work, for comparison, and whether
        # Store.vector_search returns the exact scan's chunks in its order.
        exact_times, old_kw_times = [], []
        same = tie_order_only = 0
        for q in queries:
            got = store.vector_search(model, vectors[q], depth)
            start = time.perf_counter()
            want = exact_scan(store, model, vectors[q], depth)
            exact_times.append((time.perf_counter() - start) * 1000)
            if got == want:
                same += 1
            elif same_up_to_ties(got, want):
                tie_order_only += 1
            start = time.perf_counter()
            old_keyword_search(store, q, depth)
            old_kw_times.append((time.perf_counter() - start) * 1000)
        fig["before"] = {
            "exact_scan_p50_ms": percentile(exact_times, 50),
            "exact_scan_p99_ms": percentile(exact_times, 99),
            "keyword_rank_join_p50_ms": percentile(old_kw_times, 50),
            "keyword_rank_join_p99_ms": percentile(old_kw_times, 99),
        }
        fig["exact_identical"] = same
        fig["exact_tie_order_only"] = tie_order_only
        fig["exact_order_mismatches"] = len(queries) - same - tie_order_only
        fig["queries"] = len(queries)
        fig["depth"] = depth
        fig["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        ctx.close()
    return fig


def render(fig: dict[str, Any]) -> str:
    lat = fig["latency"]
    rows = [
        ("chunks in store", f"{fig['chunks']:,}", f"db {fig['db_mib']:.0f} MiB"),
    ]
    if "build_s" in fig:
        rows.append(("build (Store API)", f"{fig['build_s']:.0f} s", ""))
    for name, r in lat.items():
        note = f"first call {r['first_ms']:.0f} ms"
        if name == "search hybrid":
            ok = r["p50_ms"] <= TARGET_P50_MS
            note = f"p50 <= {TARGET_P50_MS:.0f} ms: {'MET' if ok else 'MISSED'}; " + note
        rows.append((f"{name} p50 / p99", f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms", note))
    before = fig["before"]
    rows += [
        (
            "before: exact scan p50 / p99",
            f"{before['exact_scan_p50_ms']:.1f} / {before['exact_scan_p99_ms']:.1f} ms",
            "the sqlite-vec scan Store.vector_search ran first",
        ),
        (
            "before: keyword p50 / p99",
            f"{before['keyword_rank_join_p50_ms']:.1f} / "
            f"{before['keyword_rank_join_p99_ms']:.1f} ms",
            "FTS5 ORDER BY rank, joined, as first",
        ),
        (
            "vector results == exact scan",
            f"{fig['exact_identical']}/{fig['queries']} identical",
            f"top-{fig['depth']}; {fig['exact_tie_order_only']} differ only in the order "
            f"of equal scores; {fig['exact_order_mismatches']} differ",
        ),
        ("peak RSS", f"{fig['peak_rss_mib']:.0f} MiB", ""),
    ]
    return format_table(rows, f"search at {fig['chunks']:,} chunks ({fig['queries']} queries)")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    fig = run(args)
    report(fig, render(fig), args.json)
    return 0 if fig["exact_order_mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
