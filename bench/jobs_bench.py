"""The job ledger's own speed: no-op throughput, enqueue-to-done latency, and the
time from a SIGKILLed worker to its job being queued again.

    .venv/bin/python bench/jobs_bench.py            # SQLite; starts its own redis-server
    .venv/bin/python bench/jobs_bench.py --database-url postgresql+psycopg://...

Prints a table; see docs/benchmarks.md for recorded figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench_common import percentile
from ingest.context import Context
from ingest.settings import Settings
from ingest.store import NewJob, Store

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_context(url: str, workdir: Path, **overrides: object) -> Context:
    settings = Settings(
        database_url=url,
        incoming_dir=workdir / "incoming",
        **overrides,  # type: ignore[arg-type]
    )
    if not settings.is_sqlite:  # PostgreSQL is migrated explicitly, as `ingest migrate` does
        store = Store.open(url)
        store.migrate()
        store.close()
    return Context(settings)


def enqueue_many(ctx: Context, n: int, batch: int = 500) -> None:
    for start in range(0, n, batch):
        with ctx.store.transaction() as tx:
            for _ in range(min(batch, n - start)):
                tx.jobs.enqueue(NewJob(kind="noop", payload={}, queue="bench"))


def inline_throughput(url: str, workdir: Path, n: int, concurrency: int) -> float:
    ctx = make_context(url, workdir, isolate_parsing=False)
    enqueue_many(ctx, n)
    worker = ctx.worker(queues=["bench"], concurrency=concurrency, burst=True)
    started = time.perf_counter()
    worker.run()
    elapsed = time.perf_counter() - started
    done = ctx.ledger.counts().get("bench", {}).get("succeeded", 0)
    ctx.close()
    assert done == n, f"only {done}/{n} jobs succeeded"
    return n / elapsed


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    client.close()
    return proc, url


def worker_process(env: dict[str, str], queues: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest.worker", "--queues", queues, "--concurrency", "2"],
        env=env,
        stderr=subprocess.DEVNULL,
    )


def wait_for_worker(ctx: Context, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(w.live for w in ctx.store.workers.list(stale_after=10)):
        if time.monotonic() > deadline:
            raise TimeoutError("worker did not register")
        time.sleep(0.05)


def queue_latency(url: str, workdir: Path, n: int) -> list[float]:
    """Enqueue-to-done in queue mode, one job at a time (worker timestamps, not polling)."""
    proc, redis_url = start_redis(workdir)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "INGEST_MODE": "queue",
        "REDIS_URL": redis_url,
        "INGEST_INCOMING_DIR": str(workdir / "incoming"),
        "INGEST_LOG_LEVEL": "warning",
    }
    ctx = make_context(url, workdir, mode="queue", redis_url=redis_url)
    worker = worker_process(env, "latency")
    try:
        wait_for_worker(ctx)
        ids = []
        for _ in range(n):
            job = ctx.ledger.submit(NewJob(kind="noop", payload={}, queue="latency"))
            ctx.doorbell.ring(job.queue, job.id)
            ids.append(job.id)
            while not (current := ctx.ledger.get(job.id)) or not current.is_terminal:
                time.sleep(0.0005)
        jobs = ctx.ledger.get_many(ids)
        return [(j.finished_at or 0) - j.created_at for j in jobs]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        ctx.close()
        proc.terminate()
        proc.wait()


def requeue_after_kill(url: str, workdir: Path, runs: int) -> list[float]:
    """SIGKILL a worker mid-job (defaults: lease 6 s, heartbeat 2 s) and time how long
    until another worker process has the job running again."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "INGEST_INCOMING_DIR": str(workdir / "incoming"),
        "INGEST_LOG_LEVEL": "warning",
        "INGEST_POLL_SECONDS": "1",
    }
    ctx = make_context(url, workdir)
    big = workdir / "big.txt"
    big.write_text(
        " ".join(f"Sentence {i} about ledgers, leases and heartbeats." for i in range(20000))
    )
    results = []
    spare = worker_process(env, "ingest")  # the survivor: it reaps and re-runs the job
    try:
        for run in range(runs):
            job = ctx.submitter.submit_path(big, collection=f"kill{run}", stage=False)
            victim = worker_process(env, "ingest")
            # Keep the spare off this job: pause it until the victim holds the claim.
            spare.send_signal(signal.SIGSTOP)
            while (current := ctx.ledger.get(job.id)) is None or current.status != "running":
                time.sleep(0.01)
            spare.send_signal(signal.SIGCONT)
            victim.kill()
            killed = time.monotonic()
            victim.wait()
            while (
                (current := ctx.ledger.get(job.id)) is None
                or current.attempt < 2
                or current.status != "running"
            ):
                time.sleep(0.02)
            results.append(time.monotonic() - killed)
            ctx.ledger.cancel(job.id)
            while not (ctx.ledger.get(job.id) or current).is_terminal:
                time.sleep(0.05)
    finally:
        spare.send_signal(signal.SIGCONT)
        spare.send_signal(signal.SIGTERM)
        spare.wait(60)
        ctx.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="default: a fresh SQLite file per measurement")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency-jobs", type=int, default=300)
    parser.add_argument("--kill-runs", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ingest-jobs-bench-"))

    def url(name: str) -> str:
        return args.database_url or f"sqlite:///{workdir / name}.db"

    try:
        rate = inline_throughput(url("throughput"), workdir, args.jobs, args.concurrency)
        latencies = queue_latency(url("latency"), workdir, args.latency_jobs)
        requeues = (
            requeue_after_kill(url("kill"), workdir, args.kill_runs) if args.kill_runs else []
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"ledger on {backend}")
    print(
        f"  no-op throughput, inline, concurrency {args.concurrency}: "
        f"{rate:,.0f} jobs/s ({args.jobs} jobs)"
    )
    ms = [x * 1000 for x in latencies]
    print(
        f"  enqueue-to-done, queue mode (Redis doorbell): median {statistics.median(ms):.1f} ms, "
        f"p90 {percentile(ms, 90):.1f} ms, p99 {percentile(ms, 99):.1f} ms ({len(ms)} jobs)"
    )
    if requeues:
        print(
            "  SIGKILL -> running again on another worker: "
            + ", ".join(f"{r:.1f} s" for r in requeues)
            + f" (max {max(requeues):.1f} s)"
        )


if __name__ == "__main__":
    main()
