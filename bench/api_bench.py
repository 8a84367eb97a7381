"""HTTP API load: search requests/s and p50/p99 latency with 1 and 2 API processes
(queue mode: they share Redis and one SQLite file), and upload throughput.

    .venv/bin/python bench/api_bench.py [--docs 300] [--seconds 20] [--clients 8]

Starts its own redis-server and `ingest serve` processes on free ports; prints a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench_common import percentile

TOPICS = [
    "rotating signing keys in the vault",
    "nightly ledger backups to cold storage",
    "laptop and badge onboarding checklist",
    "incident review writing and sharing",
    "search relevance tuning for the cluster",
    "mobile release train every other week",
]
QUERIES = [
    "how do I rotate keys",
    "where do backups go",
    "what is on the onboarding checklist",
    "when are incident reviews due",
    "relevance tuning",
    "release schedule for mobile",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def run(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def load(urls: list[str], key: str, seconds: float, clients: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        with httpx.Client(base_url=urls[n % len(urls)], timeout=30) as http:
            i = n
            while time.monotonic() < stop:
                started = time.perf_counter()
                r = http.post(
                    "/api/v1/search",
                    json={"query": QUERIES[i % len(QUERIES)], "k": 10},
                    headers={"Authorization": f"Bearer {key}"},
                )
                elapsed = time.perf_counter() - started
                r.raise_for_status()
                with lock:
                    latencies.append(elapsed)
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ingest-api-bench-"))
    redis_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    procs.append(
        subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(work),
            ],
            stdout=subprocess.DEVNULL,
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update(
        DATABASE_URL=f"sqlite:///{work / 'bench.db'}",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        INGEST_MODE="queue",
        INGEST_INCOMING_DIR=str(work / "incoming"),
        INGEST_RATE_LIMIT="1000000/minute",
        INGEST_LOG_LEVEL="warning",
    )
    try:
        run(env, "migrate")
        key = run(env, "keys", "create", "--role", "editor").strip()
        ports = [free_port(), free_port()]
        for port in ports:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "ingest", "serve", "--port", str(port)],
                    env=env,
                    stderr=subprocess.DEVNULL,
                )
            )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "ingest.worker", "--concurrency", "2"],
                env=env,
                stderr=subprocess.DEVNULL,
            )
        )
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for url in urls:
            wait_http(url + "/health/live")

        # Upload throughput: accepted (staged + committed) documents per second.
        files = [
            (f"doc{i}.txt", f"Document {i} about {TOPICS[i % len(TOPICS)]}. " * 8)
            for i in range(args.docs)
        ]
        started = time.perf_counter()
        job_ids: list[str] = []
        with httpx.Client(base_url=urls[0], timeout=120) as http:
            for start in range(0, len(files), 20):
                batch = files[start : start + 20]
                r = http.post(
                    "/api/v1/documents",
                    headers={"Authorization": f"Bearer {key}"},
                    files=[("files", (n, t.encode(), "text/plain")) for n, t in batch],
                )
                r.raise_for_status()
                job_ids += [j["job_id"] for j in r.json()["jobs"]]
        upload_s = time.perf_counter() - started
        with httpx.Client(base_url=urls[0], timeout=30) as http:
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                r = http.get(
                    "/api/v1/jobs",
                    params={"status": ["queued", "running"], "limit": 1},
                    headers={"Authorization": f"Bearer {key}"},
                )
                if not r.json()["jobs"]:
                    break
                time.sleep(1)
        ingest_s = time.perf_counter() - started
        # Warm both APIs (model load), then measure.
        load(urls, key, 3, 2)
        one = load(urls[:1], key, args.seconds, args.clients)
        two = load(urls, key, args.seconds, args.clients)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"uploads: {args.docs} documents accepted in {upload_s:.1f} s "
        f"({args.docs / upload_s:.0f} docs/s, 20 per request); all ingested after {ingest_s:.0f} s"
    )
    for label, lat in (("1 API process", one), ("2 API processes", two)):
        ms = [x * 1000 for x in lat]
        print(
            f"search, {label}, {args.clients} clients: {len(lat) / args.seconds:.1f} req/s, "
            f"p50 {percentile(ms, 50):.0f} ms, p99 {percentile(ms, 99):.0f} ms"
        )


if __name__ == "__main__":
    main()
