"""The scale-out topology under chaos, as deployed: redis-server, PostgreSQL, two API
processes, three workers and two schedulers, all real processes on loopback, run with
the same commands as deploy/docker-compose.yml.

While 500 documents are ingested through the API, a chaos loop SIGKILLs a random
worker every few seconds (and starts a replacement), restarts one API process, and
restarts Redis (empty: it keeps nothing). Afterwards every document succeeded exactly
once, with the chunk counts of a clean single-process run. It runs twice: uploads
staged on a shared folder, and in an S3 bucket (INGEST_STORAGE=s3)."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from ingest.context import build_pipeline
from ingest.embedding import build_embedder
from ingest.settings import Settings
from ingest.store import Store
from ingest.store.ledger import Ledger
from ingest.store.schema import documents, jobs
from ingest.vocabulary import JobStatus
from tests.support.postgres import PostgresServer
from tests.support.processes import (
    Proc,
    RedisServer,
    Spawner,
    free_port,
    run_cli,
    run_cli_json,
    wait_http_ok,
    wait_until,
)
from tests.support.s3 import S3Server
from tests.support.store_checks import duplicate_chunk_count

DOCUMENTS = 500
UPLOAD_BATCH = 25
MAX_KILLS = 8  # then the chaos stops and the system must converge
# Kills are paced by the work done, not by the clock: a fast machine that ingests the
# whole corpus in seconds must meet as much chaos as a slow one (8 kills by 400 docs).
KILL_EVERY_DOCUMENTS = DOCUMENTS // (MAX_KILLS + 2)
MAINTENANCE_INTERVAL_S = 3
TOPICS = [
    "signing keys rotate every ninety days in the vault console",
    "ledger backups are copied to cold storage each night",
    "the onboarding checklist covers laptops and badges",
    "incident reviews are written within five days",
    "the cafeteria serves vegetarian lunches on Tuesdays",
    "quarterly planning sets the roadmap for each team",
    "the search cluster is tuned for relevance weekly",
    "mobile releases ship every second Thursday",
]


def document_text(i: int) -> str:
    topic = TOPICS[i % len(TOPICS)]
    # Varying length: most documents are one chunk, every seventh spans several.
    repeat = 40 if i % 7 == 0 else 2
    return f"Document {i}. " + " ".join(f"{topic} (note {i}.{n})." for n in range(repeat))


@dataclass
class Chaos:
    kills: int = 0
    api_restarts: int = 0
    redis_restarts: int = 0
    # worker id prefix "host:pid:" -> monotonic time of its SIGKILL
    killed_at: dict[int, float] = field(default_factory=dict)
    # job id -> (attempt, dead owner, kill time): the jobs each killed worker held,
    # read right after the kill (uploads may still be going on then).
    held: dict[str, tuple[int, str, float]] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)


@pytest.fixture(params=["filesystem", "s3"])
def topology(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer
) -> Iterator[tuple[dict[str, str], RedisServer, Store]]:
    """The deployment's environment; uploads staged on a shared folder, or in a bucket
    of a real S3-compatible server (no INGEST_INCOMING_DIR at all)."""
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INGEST_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "INGEST_MODE": "queue",
            "DATABASE_URL": postgres_server.create_database(),
            "REDIS_URL": redis_server.url,
            "INGEST_INCOMING_DIR": str((tmp_path / "incoming").resolve()),
            "INGEST_MAINTENANCE_INTERVAL_SECONDS": str(MAINTENANCE_INTERVAL_S),
            "INGEST_RATE_LIMIT": "100000/minute",
            "INGEST_MAX_ATTEMPTS": "5",  # a job may be hit by several kills in a row
            "INGEST_RETRY_BASE_SECONDS": "0.2",
            "INGEST_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if request.param == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        del env["INGEST_INCOMING_DIR"]
        env.update(s3.env())
        env.update(
            {
                "INGEST_STORAGE": "s3",
                "INGEST_S3_BUCKET": request.getfixturevalue("s3_bucket"),
                "INGEST_S3_ENDPOINT_URL": s3.endpoint_url,
            }
        )
    store = Store.open(env["DATABASE_URL"])  # the test's own view of the database
    try:
        yield env, redis_server, store
    finally:
        store.close()
        redis_server.stop()


def expected_chunk_counts(folder: Path, tmp_path: Path) -> dict[str, int]:
    """What a clean single process makes of each file: the same parser and chunker."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}")
    pipeline = build_pipeline(settings, build_embedder(settings))
    return {
        path.name: len(pipeline.chunk(pipeline.parse(path.read_bytes(), path.name)))
        for path in sorted(folder.iterdir())
    }


def upload_all(apis: list[str], key: str, folder: Path) -> list[str]:
    """Upload every file in batches, alternating APIs, retrying a batch whose API is
    restarting (an upload is only accepted once it answered 202)."""
    job_ids: list[str] = []
    files = sorted(folder.iterdir())
    for index in range(0, len(files), UPLOAD_BATCH):
        batch = files[index : index + UPLOAD_BATCH]
        deadline = time.monotonic() + 120
        attempt = 0
        while True:
            base = apis[(index // UPLOAD_BATCH + attempt) % len(apis)]
            try:
                response = httpx.post(
                    f"{base}/api/v1/documents",
                    headers={
                        "Authorization": f"Bearer {key}",
                        # the same batch retried is the same jobs, never duplicates
                        "Idempotency-Key": f"batch-{index}",
                    },
                    files=[("files", (p.name, p.read_bytes(), "text/plain")) for p in batch],
                    timeout=60,
                )
                if response.status_code == 202:
                    job_ids.extend(j["job_id"] for j in response.json()["jobs"])
                    break
            except httpx.TransportError:
                pass
            attempt += 1
            assert time.monotonic() < deadline, f"batch {index} was never accepted"
    return job_ids


def busy_worker(ledger: Ledger, workers: list[Proc], stop: threading.Event) -> Proc | None:
    """A worker that holds a running job, waited for up to a minute: on a busy host a
    fresh worker loads its model for tens of seconds, and killing it proves nothing.
    Only a worker whose jobs are on their first or second attempt: a job killed on
    every attempt would be dead-lettered, as it should, and prove nothing either."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not stop.is_set():
        running = ledger.list_jobs(statuses=[JobStatus.RUNNING], limit=200)
        for worker in workers:
            held = [j for j in running if f":{worker.pid}:" in (j.lease_owner or "")]
            if held and all(j.attempt <= 2 for j in held):
                return worker
        stop.wait(0.2)  # the poll interval of a deadline-bounded poll
    return None


def wait_for_succeeded(ledger: Ledger, count: int, stop: threading.Event) -> bool:
    """Until `count` ingest jobs have succeeded; False if the test stops first."""
    while not stop.is_set():
        if ledger.counts().get("ingest", {}).get(JobStatus.SUCCEEDED, 0) >= count:
            return True
        stop.wait(0.2)  # the poll interval; the test's own deadline bounds the wait
    return False


def chaos_loop(
    ledger: Ledger,
    spawn: Spawner,
    env: dict[str, str],
    workers: list[Proc],
    apis: list[tuple[Proc, int]],
    redis_restart: RedisServer,
    stop: threading.Event,
    chaos: Chaos,
) -> None:
    rng = random.Random(7)
    rounds = 0
    try:
        while rounds < MAX_KILLS and wait_for_succeeded(
            ledger, (rounds + 1) * KILL_EVERY_DOCUMENTS, stop
        ):
            rounds += 1
            victim = busy_worker(ledger, workers, stop) or rng.choice(workers)
            victim.kill()
            at = chaos.killed_at[victim.pid] = time.monotonic()
            for job in ledger.list_jobs(statuses=[JobStatus.RUNNING], limit=200):
                if job.lease_owner and f":{victim.pid}:" in job.lease_owner:
                    chaos.held[job.id] = (job.attempt, job.lease_owner, at)
            chaos.kills += 1
            victim.wait(30)
            workers[workers.index(victim)] = spawn.worker(
                env, queues="ingest,maintenance", concurrency=2
            )
            if rounds == 2:
                old, port = apis[0]
                old.terminate()
                old.wait(60)
                apis[0] = (spawn.serve(env, port), port)
                chaos.api_restarts += 1
            if rounds == 3:
                redis_restart.restart()
                chaos.redis_restarts += 1
    except BaseException as exc:  # surfaced by the test after join()
        chaos.errors.append(exc)


@pytest.mark.timeout(900)
def test_topology_survives_chaos(
    topology: tuple[dict[str, str], RedisServer, Store], spawn: Spawner, tmp_path: Path
) -> None:
    env, redis_server, store = topology
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(DOCUMENTS):
        (folder / f"doc{i:04d}.txt").write_text(document_text(i))
    expected = expected_chunk_counts(folder, tmp_path)

    run_cli(env, "migrate")
    key = run_cli_json(env, "keys", "create", "--role", "editor", "--json")["key"]
    ports = [free_port(), free_port()]
    apis = [(spawn.serve(env, port), port) for port in ports]
    workers = [spawn.worker(env, queues="ingest,maintenance", concurrency=2) for _ in range(3)]
    schedulers = [spawn.ingest(env, "scheduler", name="scheduler") for _ in range(2)]
    # As an orchestrator would: traffic once each API is ready (its model loaded), and
    # chaos once the workers have loaded theirs, so that kills hit running jobs.
    for proc, port in apis:
        wait_http_ok(f"http://127.0.0.1:{port}/health/ready", 180, alive=[proc])
    wait_until(
        lambda: all("embedder ready" in w.log_text() for w in workers),
        180,
        message="the workers to load their model",
        alive=workers,
    )

    ledger = store.jobs
    stop = threading.Event()
    chaos = Chaos()
    chaos_thread = threading.Thread(
        target=chaos_loop,
        args=(store.jobs, spawn, env, workers, apis, redis_server, stop, chaos),
    )
    started = time.monotonic()
    chaos_thread.start()
    # Uploads in their own thread: kills during the uploads are timed as they happen.
    job_ids: list[str] = []
    upload_errors: list[BaseException] = []

    def upload() -> None:
        try:
            job_ids.extend(upload_all([f"http://127.0.0.1:{p}" for p in ports], key, folder))
        except BaseException as exc:  # surfaced below
            upload_errors.append(exc)

    uploader = threading.Thread(target=upload)
    uploader.start()
    try:
        requeue, recovery = watch_recoveries(ledger, job_ids, chaos, uploader, timeout=600)
    finally:
        stop.set()
        chaos_thread.join()
        uploader.join()
    assert not upload_errors, upload_errors
    assert len(job_ids) == DOCUMENTS
    assert not chaos.errors, chaos.errors
    elapsed = time.monotonic() - started
    # Stop the schedulers, then let the workers drain the last maintenance slot.
    for scheduler in schedulers:
        scheduler.terminate()
        scheduler.wait(30)
    wait_until(
        lambda: not ledger.list_jobs(statuses=["queued", "running"], limit=1),
        60,
        message="the last maintenance jobs to finish",
    )

    with store.engine.connect() as conn:
        non_terminal = conn.execute(
            sa.select(sa.func.count()).where(jobs.c.status.in_(["queued", "running"]))
        ).scalar_one()
        ingest_jobs = conn.execute(sa.select(jobs).where(jobs.c.kind == "ingest")).all()
        maintenance = conn.execute(
            sa.select(jobs.c.idempotency_key, jobs.c.status).where(
                jobs.c.kind.like("maintenance.%")
            )
        ).all()
        docs = conn.execute(sa.select(documents.c.meta, documents.c.status)).all()
    chunk_rows = {d.metadata.get("filename"): d.chunk_count for d in store.documents_in("default")}
    retries = sum(j.attempt - 1 for j in ingest_jobs)

    print(
        f"\ntopology: {DOCUMENTS} documents in {elapsed:.0f} s; {chaos.kills} worker kills, "
        f"{chaos.api_restarts} API restart, {chaos.redis_restarts} Redis restart; "
        f"{retries} retries; longest kill -> back in the queue: {max(requeue, default=0):.1f} s, "
        f"-> running again: {max(recovery, default=0):.1f} s"
    )
    assert non_terminal == 0
    assert {j.status for j in ingest_jobs} == {"succeeded"}
    assert len(docs) == DOCUMENTS
    assert {d.status for d in docs} == {"ready"}
    assert chunk_rows == expected, "chunk counts differ from a clean single-process run"
    assert duplicate_chunk_count(store) == 0
    assert store.counts()["chunks"] == sum(expected.values())
    keys = [k for k, _ in maintenance]
    assert len(keys) == len(set(keys)), "a maintenance slot ran twice"
    slots = {k.split(":")[1] for k in keys}
    assert len(slots) >= 2, "the schedulers should have covered several slots"
    for slot in slots:
        kinds = {k.split(":")[0] for k in keys if k.split(":")[1] == slot}
        assert len(kinds) == 4, f"slot {slot} is missing maintenance tasks: {kinds}"
    assert chaos.kills >= 3
    assert recovery, "no kill hit a running job; the chaos proved nothing"
    # The promise (defaults): a dead worker's job is queued again within 10 s. Running
    # it again also waits for a free slot behind the backlog, so that is only printed.
    assert max(requeue) <= 12


def watch_recoveries(
    ledger: Ledger, job_ids: list[str], chaos: Chaos, uploader: threading.Thread, *, timeout: float
) -> tuple[list[float], list[float]]:
    """Wait for the uploads to end and every job to finish. Meanwhile, for each job a
    killed worker held (chaos.held), time from the kill until the job is released (back
    in the queue, or taken by another worker) and until it runs again under a new
    attempt."""
    requeued: dict[str, float] = {}
    running_again: dict[str, float] = {}

    def all_done() -> bool:
        now = time.monotonic()
        held = dict(chaos.held)  # the chaos thread adds to it
        for job_id, (attempt, owner, at) in held.items():
            if job_id in running_again:
                continue
            job = ledger.get(job_id)
            if job is None:
                continue
            if job_id not in requeued and job.lease_owner != owner:
                requeued[job_id] = now - at
            if job.attempt > attempt and job.status in ("running", "succeeded"):
                running_again[job_id] = now - at
        if uploader.is_alive():
            return False
        finished = ledger.get_many(job_ids)
        return all(j.is_terminal for j in finished) and len(running_again) == len(held)

    wait_until(all_done, timeout, interval=0.1, message="every job to finish")
    return list(requeued.values()), list(running_again.values())
