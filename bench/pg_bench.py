"""Scale-out figures on PostgreSQL + pgvector (a real server from the pgserver wheel,
started in a temp dir on a free port, as the tests do).

    .venv/bin/python bench/pg_bench.py scaling [--docs 400] [--workers 1 2 3]
    .venv/bin/python bench/pg_bench.py search [--chunks 100000 1000000] [--queries 200] [--keep DIR]
    .venv/bin/python bench/pg_bench.py keywords --corpus ../shared/data/scifact
    .venv/bin/python bench/pg_bench.py ledger
    .venv/bin/python bench/pg_bench.py hybrid --db scifact.db --corpus ../shared/data/scifact

`scaling`: ingest throughput (documents/s, chunks/s) with 1, 2 and 3 worker processes
(`python -m ingest.worker --concurrency 1`), Redis doorbell, PostgreSQL ledger; measured
from the first claim to the last finish, after each worker has loaded its model.
`search`: Store.vector_search (HNSW, ef_search 40) and hybrid search latency at N chunks,
bulk-loaded with COPY and indexed once (m=16, ef_construction=128 as the migration builds it,
maintenance_work_mem 4GB).
`keywords`: keyword-only nDCG@10 and latency of Store.keyword_search on PostgreSQL
over a BEIR corpus (one chunk per document, title + text), on its judged queries:
ranked on the rarest words' matches (INGEST_KEYWORD_RANK_LIMIT, default) and on every
match (an unbounded limit), to show what the bound costs.
`ledger`: bench/jobs_bench.py (no-op throughput, enqueue-to-done, SIGKILL to running
again) against a fresh database of the server this starts.
`hybrid`: copies a SQLite store holding an ingested BEIR corpus (`bench/ingest_bench.py
--db`) to PostgreSQL, chunks and vectors as they are, and runs bench/tune_fusion.py
there: keyword, vector and hybrid nDCG@10 with the fusion grid, on PostgreSQL's ranking.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.postgres import PostgresServer
from tests.support.processes import RedisServer

from bench_common import (
    beir_root,
    load_corpus,
    load_qrels,
    load_queries,
    mean,
    ndcg_at_k,
    percentile,
)
from ingest.context import Context
from ingest.embedding import to_blob
from ingest.query.fusion import reciprocal_rank_fusion
from ingest.settings import Settings
from ingest.store import Store, bm25
from ingest.store.ledger import Ledger
from ingest.store.schema import chunks, collections, documents, vectors

TOPICS = [
    "signing keys rotate every ninety days in the vault console",
    "ledger backups are copied to cold storage each night",
    "the onboarding checklist covers laptops and badges",
    "incident reviews are written within five days",
    "quarterly planning sets the roadmap for each team",
    "the search cluster is tuned for relevance weekly",
]


def migrated(url: str) -> None:
    store = Store.open(url)
    store.migrate()
    store.close()


def scaling(args: argparse.Namespace) -> None:
    server = PostgresServer()
    server.start()
    work = Path(tempfile.mkdtemp(prefix="ingest-pg-scaling-"))
    redis = RedisServer(work / "redis")
    redis.start()
    docs = work / "docs"
    docs.mkdir()
    for i in range(args.docs):
        topic = TOPICS[i % len(TOPICS)]
        (docs / f"doc{i:05d}.txt").write_text(
            f"Document {i}. " + " ".join(f"{topic}, note {i}.{n}." for n in range(12))
        )
    rows = []
    try:
        for n_workers in args.workers:
            url = server.create_database()
            migrated(url)
            env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
            env.update(
                DATABASE_URL=url,
                REDIS_URL=redis.url,
                INGEST_MODE="queue",
                INGEST_INCOMING_DIR=str(work / f"incoming{n_workers}"),
                INGEST_LOG_LEVEL="warning",
            )
            workers = [
                subprocess.Popen(
                    [sys.executable, "-m", "ingest.worker", "--concurrency", "1"],
                    env=env,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(n_workers)
            ]
            try:
                ctx = Context(
                    Settings(
                        database_url=url,
                        redis_url=redis.url,
                        mode="queue",
                        incoming_dir=work / f"incoming{n_workers}",
                    )
                )
                warm = work / f"warm{n_workers}"
                warm.mkdir()
                warm_jobs = []
                for w in range(n_workers * 2):
                    (warm / f"w{w}.txt").write_text(f"warm up {w}")
                    warm_jobs.append(
                        ctx.submitter.submit_path(
                            warm / f"w{w}.txt", collection="warm", stage=True
                        ).id
                    )
                wait_terminal(ctx.ledger, warm_jobs)
                ids = [
                    ctx.submitter.submit_path(p, collection="bench", stage=True).id
                    for p in sorted(docs.iterdir())
                ]
                finished = wait_terminal(ctx.ledger, ids)
                start = min(j.started_at or 0 for j in finished)
                end = max(j.finished_at or 0 for j in finished)
                chunks = sum(int((j.result or {}).get("chunks", 0)) for j in finished)
                ok = sum(j.status == "succeeded" for j in finished)
                rows.append((n_workers, ok, chunks, end - start))
                ctx.close()
            finally:
                for w in workers:
                    w.send_signal(signal.SIGTERM)
                for w in workers:
                    w.wait(60)
    finally:
        redis.stop()
        server.stop()
    print(f"ingest scaling on PostgreSQL ({args.docs} documents, {os.cpu_count()} cores)")
    base = rows[0][1] / rows[0][3]
    for n, ok, chunks, seconds in rows:
        rate = ok / seconds
        print(
            f"  {n} worker(s): {rate:5.1f} docs/s, {chunks / seconds:5.1f} chunks/s "
            f"({ok} ok in {seconds:.1f} s), speed-up x{rate / base:.2f}"
        )


def wait_terminal(ledger: Ledger, ids: list[str], timeout: float = 3600) -> list:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = ledger.get_many(ids)
        if all(j.is_terminal for j in jobs):
            return jobs
        time.sleep(0.5)
    raise TimeoutError("jobs did not finish")


def recount_keyword_stats(url: str) -> None:
    """BM25's statistics for rows loaded with COPY, around DocumentWriter."""
    store = Store.open(url)
    try:
        with store.engine.begin() as conn:
            bm25.recount(conn)
    finally:
        store.close()


def bulk_load(url: str, n: int, model: str, dim: int = 384, clusters: int = 200) -> None:
    """n chunks (one document per 50) with clustered unit vectors, via COPY."""
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(clusters, dim)).astype(np.float32)
    plain = url.replace("+psycopg", "")
    with psycopg.connect(plain) as conn:
        # Indexes are built once after the load, as a bulk import would do.
        conn.execute("DROP INDEX IF EXISTS ix_vectors_hnsw_384")
        conn.execute("DROP INDEX IF EXISTS ix_chunks_tsv")
        conn.execute(
            "INSERT INTO collections(name, created_at) VALUES ('scale', extract(epoch FROM now()))"
        )
        cid = conn.execute("SELECT id FROM collections WHERE name='scale'").fetchone()[0]  # type: ignore[index]
        words = " ".join(TOPICS).split()
        with conn.cursor().copy(
            "COPY documents (id, collection_id, source_uri, status, metadata, chunk_count,"
            " created_at, updated_at) FROM STDIN"
        ) as copy:
            for d in range(n // 50):
                copy.write_row(
                    (
                        f"d{d:031d}",
                        cid,
                        f"scale://{d}",
                        "ready",
                        "{}",
                        50,
                        "1767225600",  # 2026-01-01, epoch seconds
                        "1767225600",  # 2026-01-01, epoch seconds
                    )
                )
        with conn.cursor().copy(
            "COPY chunks (id, document_id, ordinal, text, text_hash, token_count) FROM STDIN"
        ) as copy:
            for i in range(n):
                text = " ".join(random.Random(i).choices(words, k=30))
                copy.write_row((f"c{i:031d}", f"d{i // 50:031d}", i % 50, text, f"h{i:063d}", 30))
        with conn.cursor().copy(
            "COPY vectors (model, text_hash, dim, embedding, created_at) FROM STDIN"
        ) as copy:
            for start in range(0, n, 10_000):
                size = min(10_000, n - start)
                labels = rng.integers(0, clusters, size=size)
                vecs = centers[labels] + rng.normal(scale=0.6, size=(size, dim)).astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                literals = io.StringIO()
                np.savetxt(literals, vecs, fmt="%.5f", delimiter=",")
                for j, literal in enumerate(literals.getvalue().splitlines()):
                    copy.write(f"{model}\th{start + j:063d}\t{dim}\t[{literal}]\t1767225600\n")
        conn.commit()
        started = time.perf_counter()
        conn.execute("CREATE INDEX ix_chunks_tsv ON chunks USING gin (tsv)")
        print(f"  GIN build for {n:,} chunks: {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        recount_keyword_stats(url)
        print(f"  BM25 statistics for {n:,} chunks: {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        # The whole HNSW graph must fit in maintenance_work_mem, or the build
        # slows down many times over (about 2 GB at 1M x 384 dimensions).
        conn.execute("SET maintenance_work_mem = '4GB'")
        conn.execute(
            "CREATE INDEX ix_vectors_hnsw_384 ON vectors USING hnsw "
            "((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 128) "
            "WHERE dim = 384"
        )
        conn.execute("ANALYZE")
        conn.commit()
        print(f"  HNSW build for {n:,} vectors: {time.perf_counter() - started:.0f} s")


class KeptServer(PostgresServer):
    """A server whose data directory is `root`, kept after stop: `search --keep` builds
    each size's database once and later runs measure it again without rebuilding."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = root.resolve()
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"

    def start(self, timeout: float = 60.0) -> None:
        if (self.data / "PG_VERSION").exists():
            self._launch()
            self._wait_accepting(timeout)
        else:
            super().start(timeout)

    def database(self, name: str) -> tuple[str, bool]:
        """The url of database `name`, and whether a build of it completed."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name), (self.root / f"{name}.built").exists()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


def search(args: argparse.Namespace) -> None:
    server = KeptServer(args.keep) if args.keep else PostgresServer()
    server.start()
    try:
        for n in args.chunks:
            built = False
            if isinstance(server, KeptServer):
                url, built = server.database(f"scale_{n}")
                if not built:  # a build cut short: start it again
                    with psycopg.connect(server.admin_url, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE "scale_{n}"')
                    url, built = server.database(f"scale_{n}")
            else:
                url = server.create_database()
            migrated(url)
            ctx = Context(Settings(database_url=url))
            model = ctx.embedder.model_id
            if built:
                print(f"  reusing the database of {n:,} chunks in {args.keep}")
            else:
                started = time.perf_counter()
                bulk_load(url, n, model)
                print(f"  load of {n:,} chunks: {time.perf_counter() - started:.0f} s")
                if isinstance(server, KeptServer):
                    (server.root / f"scale_{n}.built").touch()
            measure_search(ctx, n, args.queries)
            ctx.close()
    finally:
        server.stop()


def measure_search(ctx: Context, n: int, count: int) -> None:
    """Vector search alone (k=10), then hybrid search as the API runs it, then the
    legs of hybrid search one after another, to show where its time goes."""
    model = ctx.embedder.model_id
    queries = [f"{TOPICS[i % len(TOPICS)]} {i}" for i in range(count)]
    ctx.searcher.search("warm up", k=10)
    depth = max(10, ctx.searcher.fusion.candidates)
    vec_ms, hybrid_ms = [], []
    legs: dict[str, list[float]] = {
        "query embedding": [],
        f"vector search k={depth}": [],
        f"keyword search k={depth}": [],
        "fusion": [],
        "fetch of the hits": [],
    }
    parts = list(legs.values())
    for q in queries:
        v = ctx.embedder.embed_queries([q])[0]
        t = time.perf_counter()
        ctx.store.vector_search(model, v.astype("<f4").tobytes(), 10)
        vec_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        ctx.searcher.search(q, k=10)
        hybrid_ms.append((time.perf_counter() - t) * 1000)
        t0 = time.perf_counter()
        blob = to_blob(ctx.embedder.embed_queries([q])[0])
        t1 = time.perf_counter()
        by_vector = ctx.store.vector_search(model, blob, depth)
        t2 = time.perf_counter()
        by_keyword = ctx.store.keyword_search(q, depth)
        t3 = time.perf_counter()
        fused = reciprocal_rank_fusion(
            [([pk for pk, _ in by_vector], 1.0), ([pk for pk, _ in by_keyword], 1.0)],
            k=ctx.searcher.fusion.rrf_k,
        )[:10]
        t4 = time.perf_counter()
        ctx.store.hits([pk for pk, _ in fused])
        t5 = time.perf_counter()
        ends = [t0, t1, t2, t3, t4, t5]
        for part, a, b in zip(parts, ends, ends[1:], strict=False):
            part.append((b - a) * 1000)
    print(
        f"search at {n:,} chunks (PostgreSQL HNSW): "
        f"vector p50 {statistics.median(vec_ms):.1f} ms "
        f"p99 {percentile(vec_ms, 99):.1f} ms; hybrid incl. query embedding "
        f"p50 {statistics.median(hybrid_ms):.1f} ms p99 {percentile(hybrid_ms, 99):.1f} ms"
    )
    print("  hybrid search's legs, run one after another:")
    for name, ms in legs.items():
        print(
            f"    {name:24s} p50 {statistics.median(ms):6.1f} ms  p99 {percentile(ms, 99):6.1f} ms"
        )
    total = [sum(x) for x in zip(*parts, strict=True)]
    print(
        f"    {'sum':24s} p50 {statistics.median(total):6.1f} ms  "
        f"p99 {percentile(total, 99):6.1f} ms"
    )


def keywords(args: argparse.Namespace) -> None:
    corpus = load_corpus(args.corpus)
    root = beir_root(args.corpus)
    qrels_path = args.qrels or root / "qrels" / "train.tsv"
    qrels = load_qrels(qrels_path)
    queries = load_queries(root / "queries.jsonl")
    server = PostgresServer()
    server.start()
    try:
        url = server.create_database()
        migrated(url)
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            conn.execute(
                "INSERT INTO collections(name, created_at) "
                "VALUES ('beir', extract(epoch FROM now()))"
            )
            cid = conn.execute("SELECT id FROM collections").fetchone()[0]  # type: ignore[index]
            with conn.cursor().copy(
                "COPY documents (id, collection_id, source_uri, status, metadata, chunk_count,"
                " created_at, updated_at) FROM STDIN"
            ) as copy:
                for i, doc in enumerate(corpus):
                    day = "1767225600"  # 2026-01-01, epoch seconds
                    copy.write_row((f"d{i:031d}", cid, doc.id, "ready", "{}", 1, day, day))
            with conn.cursor().copy(
                "COPY chunks (id, document_id, ordinal, text, text_hash, token_count) FROM STDIN"
            ) as copy:
                for i, doc in enumerate(corpus):
                    text = f"{doc.title}\n{doc.text}".strip()
                    copy.write_row((f"c{i:031d}", f"d{i:031d}", 0, text, f"h{i:063d}", 1))
            conn.commit()
            conn.execute("ANALYZE")
            conn.commit()
        recount_keyword_stats(url)
        print(f"keyword search over {len(corpus):,} documents, {len(qrels)} judged queries")
        limits = [("limit 1000", 1000), ("limit 5000 (the default)", 5000), ("no limit", 10**9)]
        for label, limit in limits:
            store = Store.open(url, keyword_rank_limit=limit)
            scores, ms = [], []
            for qid, relevant in qrels.items():
                started = time.perf_counter()
                ranked = store.keyword_search(queries[qid], 10)
                ms.append((time.perf_counter() - started) * 1000)
                hits = store.hits([pk for pk, _ in ranked])
                scores.append(ndcg_at_k([hits[pk].source for pk, _ in ranked], relevant))
            store.close()
            print(
                f"  {label:26s} nDCG@10 {mean(scores):.4f}; "
                f"p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 99):.1f} ms"
            )
    finally:
        server.stop()


def copy_store(sqlite_path: Path, url: str) -> None:
    """Every row of the content tables, as they are (the tsvector is generated)."""
    source = Store.open(f"sqlite:///{sqlite_path}")
    target = Store.open(url)
    try:
        with source.engine.connect() as reader, target.engine.begin() as writer:
            for table in (collections, documents, chunks, vectors):
                rows = reader.execute(sa.select(table))
                while batch := rows.fetchmany(2000):
                    # By column key: documents.metadata is `meta` in Python.
                    values = [{c.key: row._mapping[c] for c in table.columns} for row in batch]
                    writer.execute(table.insert(), values)
            bm25.recount(writer)  # the rows came around DocumentWriter
            writer.exec_driver_sql("ANALYZE")
    finally:
        source.close()
        target.close()


def hybrid(args: argparse.Namespace) -> None:
    import tune_fusion

    server = PostgresServer()
    server.start()
    try:
        url = server.create_database()
        migrated(url)
        started = time.perf_counter()
        copy_store(args.db, url)
        print(f"copied {args.db} to PostgreSQL in {time.perf_counter() - started:.0f} s")
        qrels = ["--qrels", str(args.qrels)] if args.qrels else []
        tune_fusion.main(["--database-url", url, "--corpus", str(args.corpus), *qrels])
    finally:
        server.stop()


def ledger(args: argparse.Namespace) -> None:
    server = PostgresServer()
    server.start()
    try:
        url = server.create_database()
        bench = Path(__file__).resolve().parent / "jobs_bench.py"
        subprocess.run([sys.executable, str(bench), "--database-url", url], check=True)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("scaling")
    p.add_argument("--docs", type=int, default=400)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    p = sub.add_parser("search")
    p.add_argument("--chunks", type=int, nargs="+", default=[100_000])
    p.add_argument("--queries", type=int, default=200)
    p.add_argument(
        "--keep",
        type=Path,
        help="server folder kept after the run; a size built there before is reused",
    )
    p = sub.add_parser("keywords")
    p.add_argument("--corpus", type=Path, required=True, help="BEIR folder (corpus, queries)")
    p.add_argument("--qrels", type=Path, help="judgments; default qrels/train.tsv")
    p = sub.add_parser("hybrid")
    p.add_argument("--db", type=Path, required=True, help="SQLite store with the corpus")
    p.add_argument("--corpus", type=Path, required=True, help="BEIR folder (queries, qrels)")
    p.add_argument("--qrels", type=Path, help="tuning judgments; default qrels/train.tsv")
    args = parser.parse_args()
    sub.add_parser("ledger")
    commands = {
        "scaling": scaling,
        "search": search,
        "keywords": keywords,
        "hybrid": hybrid,
        "ledger": ledger,
    }
    commands[args.command](args)


if __name__ == "__main__":
    main()
