"""Search throughput with a PostgreSQL read replica (DATABASE_READ_URL).

    flock /tmp/bench.lock .venv/bin/python bench/replica_bench.py [--chunks 20000] [--seconds 10]

Starts a primary and a streaming replica (`pg_basebackup -R`, as
tests/integration/test_read_replica.py does) from the pgserver wheel's binaries,
bulk-loads N chunks with clustered vectors (bench/pg_bench.py's loader), waits for the
replica to replay them, then runs the store side of a hybrid search (Store.vector_search
+ Store.keyword_search + Store.hits, k=10; no query embedding, which runs on the API's
own cores) from threads for a fixed time:

* 4 threads reading the primary, then 4 reading the replica (one server's throughput);
* 8 threads on the primary, then 4 on the primary + 4 on the replica at once
  (what a second server adds). Both servers share this machine's cores here, so the
  gain a replica brings on its own host is not measurable on one machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.postgres import PostgresReplica, PostgresServer

from bench_common import percentile
from ingest.store import Store
from pg_bench import TOPICS, bulk_load, migrated

MODEL = "bench-model"


def one_search(store: Store, rng: np.random.Generator, i: int) -> None:
    vector = rng.normal(size=384).astype("<f4")
    vector /= np.linalg.norm(vector)
    found = store.vector_search(MODEL, vector.tobytes(), 10)
    found += store.keyword_search(TOPICS[i % len(TOPICS)], 10)
    store.hits([pk for pk, _ in found])


def run(stores: list[Store], threads_each: int, seconds: float) -> tuple[int, list[float]]:
    """Searches done by `threads_each` threads per store in `seconds`, and their latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop(store: Store, seed: int) -> None:
        rng = np.random.default_rng(seed)
        mine: list[float] = []
        i = seed
        while time.monotonic() < stop:
            started = time.perf_counter()
            one_search(store, rng, i)
            mine.append((time.perf_counter() - started) * 1000)
            i += 1
        with lock:
            latencies.extend(mine)

    workers = [
        threading.Thread(target=loop, args=(store, n * 100 + t))
        for n, store in enumerate(stores)
        for t in range(threads_each)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return len(latencies), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    primary = PostgresServer()
    primary.start()
    replica = PostgresReplica(primary)
    try:
        replica.start()
        url = primary.create_database()
        migrated(url)
        bulk_load(url, args.chunks, MODEL)
        deadline = time.monotonic() + 600
        while not replica.caught_up():
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.2)
        on_primary = Store.open(url, pool_size=8)
        on_replica = Store.open(url, read_url=replica.url_for(url.rsplit("/", 1)[1]), pool_size=8)
        run([on_primary, on_replica], 1, 2.0)  # warm both servers' caches
        cases = [
            ("primary, 4 threads", [on_primary], 4),
            ("replica, 4 threads", [on_replica], 4),
            ("primary, 8 threads", [on_primary], 8),
            ("primary 4 + replica 4 threads", [on_primary, on_replica], 4),
        ]
        print(f"store-side hybrid search (vector + keyword + hits, k=10), {args.chunks:,} chunks")
        for label, stores, threads in cases:
            done, latencies = run(stores, threads, args.seconds)
            print(
                f"  {label:32} {done / args.seconds:7.1f} searches/s  "
                f"p50 {statistics.median(latencies):6.1f} ms  "
                f"p99 {percentile(latencies, 99):6.1f} ms"
            )
        on_primary.close()
        on_replica.close()
    finally:
        replica.stop()
        primary.stop()


if __name__ == "__main__":
    main()
