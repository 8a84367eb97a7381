"""The job system as it is deployed: `ingest add --no-wait` in queue mode, a real
redis-server, `python -m ingest.worker` and `ingest scheduler` processes, and the
SQL ledger read the way an operator would (CLI `--json`, or SQL directly).

Each test waits by polling the ledger against a deadline; nothing sleeps blindly.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docx
import pytest
import sqlalchemy as sa

from ingest.ingestion.maintenance import CLEANUP_STAGED, INTEGRITY, TASKS
from ingest.store import Job, NewJob, document_id_for
from ingest.store.engine import write_transaction
from ingest.store.schema import jobs as jobs_table
from ingest.vocabulary import TERMINAL
from tests.acceptance.conftest import Database
from tests.fixtures_docs import (
    make_corrupt_pdf,
    make_csv,
    make_docx,
    make_eml,
    make_html,
    make_json,
    make_md,
    make_pdf,
    make_pptx,
    make_txt,
    make_xlsx,
    prose,
)
from tests.support.fake_openai import API_KEY, MODEL, FakeOpenAI
from tests.support.processes import Proc, RedisServer, Spawner, run_cli_json, wait_until
from tests.support.store_checks import duplicate_chunk_count

pytestmark = pytest.mark.slow


# Words -> chunks with the default chunker (254 tokens): ~190 words a chunk, and
# the offline model embeds a chunk in ~0.15 s on one of this machine's two cores.
# A job writes progress from 0.2 s after its start, then at most every 0.2 s (each
# stage change at once): the progress document embeds long enough (~1 s with the
# int8 model) for its bar to be seen rising several times.
PROGRESS_DOC_WORDS = 18_000  # ~96 chunks: twelve embedding batches of 8
LARGE_DOC_WORDS = 15_000  # ~80 chunks


# --- helpers ---------------------------------------------------------------------


def submit(env: dict[str, str], path: Path) -> list[dict[str, Any]]:
    """`ingest add PATH --no-wait --json`: the queued jobs, as the CLI prints them."""
    report = run_cli_json(env, "add", str(path), "--no-wait")
    assert report["skipped"] == 0
    jobs: list[dict[str, Any]] = report["jobs"]
    assert all(j["status"] == "queued" and j["attempt"] == 0 for j in jobs)
    return jobs


def submit_one(env: dict[str, str], path: Path) -> str:
    [job] = submit(env, path)
    assert job["document_id"] == document_id_for("default", str(path.resolve()))
    return str(job["job_id"])


def wait_finished(
    db: Database,
    job_ids: Sequence[str],
    *,
    timeout: float,
    alive: Sequence[Proc] = (),
) -> dict[str, Job]:
    """Poll the ledger until every job is terminal; returns them by id."""

    def all_terminal() -> dict[str, Job] | None:
        found = db.ledger.get_many(list(job_ids))
        if len(found) == len(job_ids) and all(j.is_terminal for j in found):
            return {j.id: j for j in found}
        return None

    done = sum(1 for j in db.ledger.get_many(list(job_ids)) if j.is_terminal)
    return wait_until(
        all_terminal,
        timeout,
        interval=0.1,
        message=f"{len(job_ids)} job(s) to finish ({done} were done at the start)",
        alive=alive,
    )


def wait_for_job(
    db: Database,
    job_id: str,
    predicate: Any,
    *,
    timeout: float,
    what: str,
    alive: Sequence[Proc] = (),
) -> Job:
    def check() -> Job | None:
        job = db.job(job_id)
        return job if predicate(job) else None

    return wait_until(check, timeout, message=f"job {job_id}: {what}", alive=alive)


def embedding(job: Job) -> bool:
    """Running, in the embed stage, with at least two batches done."""
    return job.status == "running" and job.stage == "embed" and job.progress_current >= 16


def ran_on(worker: Proc, job_id: str) -> bool:
    """The worker's own log says this process finished the job."""
    pattern = re.compile(rf"\[{worker.pid}\].* job {job_id} finished in ")
    return any(pattern.search(line) for line in worker.log_text().splitlines())


def only_worker_is(db: Database, worker: Proc) -> None:
    assert worker.alive, worker.log_tail()
    registered = [w.as_dict() for w in db.store.workers.list(stale_after=15)]
    assert [w["pid"] for w in registered] == [worker.pid]
    assert registered[0]["live"]


def chunk_rows(db: Database, document_id: str) -> int:
    return len(db.store.chunks_of(document_id))


def openai_env(env: dict[str, str], server: FakeOpenAI) -> dict[str, str]:
    return {
        **env,
        "INGEST_EMBEDDER": "openai",
        "INGEST_EMBEDDING_URL": server.url,
        "INGEST_EMBEDDING_MODEL": MODEL,
        "INGEST_EMBEDDING_API_KEY": API_KEY,
        "INGEST_EMBEDDING_ATTEMPTS": "1",  # one HTTP failure fails the job's attempt
    }


def make_mixed_corpus(folder: Path, count: int) -> list[Path]:
    """`count` small documents in every supported format, each with its own text."""
    makers = [
        lambda i: make_txt(folder, f"note{i:02}.txt", prose(60, i)),
        lambda i: make_md(folder, f"page{i:02}.md", f"# Page {i}\n\n{prose(60, i)}"),
        lambda i: make_docx(folder, f"memo{i:02}.docx", [prose(40, i)], [["Item", f"{i}"]]),
        lambda i: make_pdf(folder, f"paper{i:02}.pdf", [prose(40, i), prose(30, i + 1000)]),
        lambda i: make_pptx(folder, f"deck{i:02}.pptx", [(f"Slide {i}", prose(30, i))]),
        lambda i: make_xlsx(folder, f"sheet{i:02}.xlsx", [["name", "count"], [f"row{i}", i]]),
        lambda i: make_csv(folder, f"table{i:02}.csv", [["name", "note"], [f"r{i}", prose(20, i)]]),
        lambda i: make_json(folder, f"data{i:02}.json", {"id": i, "note": prose(30, i)}),
        lambda i: make_eml(folder, f"mail{i:02}.eml", f"Subject {i}", prose(50, i)),
        lambda i: make_html(folder, f"site{i:02}.html", prose(40, i), "Home", f"Footer {i}"),
    ]
    return [makers[i % len(makers)](i) for i in range(count)]


# --- throughput and progress ----------------------------------------------------------


def test_fifty_documents_all_succeed_and_progress_rises_to_one(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    docs = tmp_path / "docs"
    make_mixed_corpus(docs, 49)
    large = make_txt(docs, "zz-large-report.txt", prose(PROGRESS_DOC_WORDS, 7))
    large_doc_id = document_id_for("default", str(large.resolve()))

    submitted = submit(queue_env, docs)
    assert len(submitted) == 50
    job_ids = [j["job_id"] for j in submitted]
    [large_job_id] = [j["job_id"] for j in submitted if j["document_id"] == large_doc_id]

    worker = spawn.worker(queue_env, concurrency=2)
    observed: list[tuple[str, float]] = []

    def large_job_done() -> bool:
        job = db.job(large_job_id)
        observed.append((job.status, job.progress))
        return job.is_terminal

    wait_until(large_job_done, 200, message="the large document's job", alive=[worker])
    finished = wait_finished(db, job_ids, timeout=120, alive=[worker])

    statuses = {job_id: job.status for job_id, job in finished.items()}
    assert set(statuses.values()) == {"succeeded"}, {
        j.id: (j.status, j.error_message) for j in finished.values() if j.status != "succeeded"
    }
    assert all(j.attempt == 1 for j in finished.values())
    counts = db.store.counts()
    assert counts["by_status"] == {"ready": 50}
    assert duplicate_chunk_count(db.store) == 0

    large_job = finished[large_job_id]
    assert large_job.progress == 1.0
    assert large_job.result is not None
    assert large_job.result["chunks"] >= 40, large_job.result
    assert [s["stage"] for s in large_job.stages] == ["parse", "chunk", "embed", "write"]

    values = [progress for _, progress in observed]
    assert values[0] == 0.0, observed[:5]
    assert values[-1] == 1.0
    assert observed[-1][0] == "succeeded"
    assert all(a <= b for a, b in itertools.pairwise(values)), values
    intermediate = sorted({v for v in values if 0.0 < v < 1.0})
    embedding_values = [v for v in intermediate if 0.15 < v < 0.95]
    assert len(intermediate) >= 4, intermediate
    assert len(embedding_values) >= 2, intermediate  # seen rising batch by batch
    assert any(status == "running" for status, _ in observed)


# --- a worker dies -------------------------------------------------------------------


def test_killed_worker_job_reruns_on_a_new_worker_without_duplicates(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    # Default lease (6 s), heartbeat (2 s) and poll (1 s): what is measured is real.
    env = {k: v for k, v in queue_env.items() if k != "INGEST_POLL_SECONDS"}
    # ~48 chunks: killed after two batches, the re-run still has four to embed.
    large = make_txt(tmp_path / "docs", "large.txt", prose(PROGRESS_DOC_WORDS, 11))
    job_id = submit_one(env, large)
    first = spawn.worker(env, name="worker-1")

    running = wait_for_job(
        db, job_id, embedding, timeout=150, what="embedding on worker 1", alive=[first]
    )
    assert running.attempt == 1
    first.kill()
    killed_at = time.monotonic()
    first.wait(timeout=10)
    second = spawn.worker(env, name="worker-2")

    dead_owner = running.lease_owner
    # The promise (defaults): the dead worker's job is back in the queue within 10 s,
    # reaped by worker 2 while it still loads its model.
    wait_for_job(
        db,
        job_id,
        lambda j: j.lease_owner != dead_owner,
        timeout=30,
        what="released by the dead worker",
        alive=[second],
    )
    requeue_seconds = time.monotonic() - killed_at
    rerun = wait_for_job(
        db,
        job_id,
        lambda j: j.status == "running" and j.attempt == 2,
        timeout=150,  # after worker 2's model load, which a busy host makes slow
        what="running again as attempt 2",
        alive=[second],
    )
    print(
        f"kill -> back in the queue: {requeue_seconds:.2f} s; "
        f"-> running again (attempt 2): {time.monotonic() - killed_at:.2f} s"
    )
    assert rerun.lease_owner is not None
    assert str(second.pid) in rerun.lease_owner
    assert requeue_seconds <= 10.0

    job = wait_finished(db, [job_id], timeout=150, alive=[second])[job_id]
    assert job.status == "succeeded", (job.error_type, job.error_message)
    assert job.attempt == 2
    assert job.document_id is not None
    document = db.store.get_document(job.document_id)
    assert document is not None
    assert document.status == "ready"
    assert duplicate_chunk_count(db.store) == 0
    assert chunk_rows(db, job.document_id) == document.chunk_count
    assert document.chunk_count == db.store.counts()["chunks"]
    assert job.result is not None
    # The first attempt's committed batches came from the embedding cache.
    assert 0 < job.result["embedded"] < job.result["chunks"], job.result
    assert "requeued 1 job(s) whose worker stopped responding" in second.log_text()


# --- failures, retries, dead letters -------------------------------------------------------


def test_transient_embedding_failures_retry_then_dead_letter_and_manual_retry(
    tmp_path: Path,
    queue_env: dict[str, str],
    spawn: Spawner,
    db: Database,
    fake_openai: FakeOpenAI,
) -> None:
    server = fake_openai
    env = openai_env(queue_env, server)
    docs = tmp_path / "docs"
    worker = spawn.worker(env, queues="ingest,maintenance", concurrency=1)

    # Two 503s, then healthy: attempts 1 and 2 fail, attempt 3 succeeds.
    server.fail_next(2, 503, "overloaded, try later")
    flaky = submit_one(env, make_txt(docs, "flaky.txt", prose(80, 1)))
    job = wait_finished(db, [flaky], timeout=120, alive=[worker])[flaky]
    assert job.status == "succeeded", (job.error_type, job.error_message)
    assert job.attempt == 3
    assert len(server.requests) == 3

    # Always 503: dead after INGEST_MAX_ATTEMPTS (3), with the endpoint's answer.
    server.fail_always(503, "overloaded, try later")
    doomed = submit_one(env, make_txt(docs, "doomed.txt", prose(80, 2)))
    job = wait_finished(db, [doomed], timeout=120, alive=[worker])[doomed]
    assert job.status == "dead"
    assert (job.attempt, job.max_attempts) == (3, 3)
    assert job.error_type == "embedding_error"
    assert job.error_message is not None
    assert f"{server.url}/embeddings" in job.error_message
    assert "HTTP 503" in job.error_message
    assert len(server.requests) == 6

    dead = run_cli_json(env, "jobs", "dead")["jobs"]
    assert [j["job_id"] for j in dead] == [doomed]
    assert dead[0]["error"]["type"] == "embedding_error"

    # Maintenance removes the succeeded job's staged copy, but keeps the dead
    # one's: a retry needs its bytes.
    cleanup = db.ledger.submit(NewJob(kind=CLEANUP_STAGED, payload={}, queue="maintenance"))
    job = wait_finished(db, [cleanup.id], timeout=120, alive=[worker])[cleanup.id]
    assert (job.status, job.result) == ("succeeded", {"removed": 1, "orphans_removed": 0})

    server.heal()
    [requeued] = run_cli_json(env, "jobs", "retry", doomed)["jobs"]
    assert (requeued["status"], requeued["attempt"]) == ("queued", 0)
    job = wait_finished(db, [doomed], timeout=120, alive=[worker])[doomed]
    assert job.status == "succeeded", (job.error_type, job.error_message)
    assert job.attempt == 1
    assert run_cli_json(env, "jobs", "dead")["jobs"] == []

    # Bad input is not retried: one attempt, failed, "rejected".
    before = len(server.requests)
    corrupt = submit_one(env, make_corrupt_pdf(docs, "broken.pdf"))
    job = wait_finished(db, [corrupt], timeout=120, alive=[worker])[corrupt]
    assert (job.status, job.attempt, job.error_type) == ("failed", 1, "rejected")
    assert job.error_message is not None
    assert "PDF" in job.error_message
    assert len(server.requests) == before  # never reached the embedder
    [shown] = run_cli_json(env, "jobs", "show", corrupt)["jobs"]
    assert shown["status"] == "failed"
    assert shown["error"]["type"] == "rejected"


# --- limits ------------------------------------------------------------------------


def test_soft_time_limit_fails_the_job_and_the_worker_goes_on(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    # The limit must let the first job get through its cold start (the parser pool
    # spawns in ~2 s) and its chunking to the embedding, and be far shorter than
    # embedding the whole document (~640 chunks: ~20 s with the int8 ONNX model on a
    # quiet machine; the model loads before the first claim, outside the job).
    env = {**queue_env, "INGEST_JOB_SOFT_TIMEOUT_SECONDS": "8"}
    docs = tmp_path / "docs"
    slow = submit_one(env, make_txt(docs, "large.txt", prose(8 * LARGE_DOC_WORDS, 21)))
    worker = spawn.worker(env, concurrency=1)

    job = wait_finished(db, [slow], timeout=150, alive=[worker])[slow]
    assert (job.status, job.error_type, job.attempt) == ("failed", "timeout", 1)
    assert job.error_message is not None
    assert "soft time limit of 8 s" in job.error_message
    assert job.stage == "embed"  # stopped in the middle of the embedding
    assert 0 < job.progress_current < job.progress_total
    assert job.started_at is not None
    assert job.finished_at is not None
    assert job.finished_at - job.started_at >= 8
    assert job.document_id is not None
    assert chunk_rows(db, job.document_id) == 0

    small = submit_one(env, make_txt(docs, "small.txt", prose(80, 22)))
    job = wait_finished(db, [small], timeout=120, alive=[worker])[small]
    assert job.status == "succeeded", (job.error_type, job.error_message)
    only_worker_is(db, worker)
    assert ran_on(worker, slow) is False  # it failed, it did not finish
    assert ran_on(worker, small)


def write_docx_bomb(path: Path, megabytes: int) -> int:
    """A valid .docx whose word/document.xml inflates to `megabytes` of paragraphs.

    Deflate squeezes the repetition ~1:200 (level 1, chosen for speed), so the file
    is a few MB. Returns the uncompressed size of document.xml."""
    seed = path.with_suffix(".seed.docx")
    document = docx.Document()
    document.add_paragraph("seed")
    document.save(str(seed))
    head = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body>"
    )
    paragraph = b"<w:p><w:r><w:t>All work and no play makes Jack a dull boy.</w:t></w:r></w:p>"
    block = paragraph * ((1 << 20) // len(paragraph))
    tail = b"</w:body></w:document>"
    written = 0
    with (
        zipfile.ZipFile(seed) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb,
    ):
        for info in source.infolist():
            if info.filename != "word/document.xml":
                bomb.writestr(info.filename, source.read(info.filename))
        with bomb.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(head)
            while written < megabytes << 20:
                member.write(block)
                written += len(block)
            member.write(tail)
    seed.unlink()
    return written + len(head) + len(tail)


def test_parser_memory_limit_stops_a_zip_bomb_and_the_worker_goes_on(
    tmp_path: Path,
    queue_env: dict[str, str],
    spawn: Spawner,
    db: Database,
    fake_openai: FakeOpenAI,
) -> None:
    env = {**openai_env(queue_env, fake_openai), "INGEST_PARSE_MEMORY_MB": "400"}
    worker = spawn.worker(env, concurrency=1)  # starts while the bomb is written
    docs = tmp_path / "docs"
    bomb = docs / "bomb.docx"
    docs.mkdir()
    inflated = write_docx_bomb(bomb, 450)
    # Past the memory limit, yet under the parser's 1 GiB unzipped-size guard,
    # so what stops it is the limit on the parser process.
    assert 400 << 20 < inflated < 1 << 30
    assert bomb.stat().st_size < 10 << 20

    job_id = submit_one(env, bomb)
    job = wait_finished(db, [job_id], timeout=150, alive=[worker])[job_id]
    assert (job.status, job.attempt, job.error_type) == ("failed", 1, "rejected")
    assert job.error_message is not None
    # In the parser process, a MemoryError inflating document.xml under the
    # address-space limit (INGEST_PARSE_MEMORY_MB); a parser killed outright
    # would be reported as "the parser process died".
    assert "400 MB of memory" in job.error_message, job.error_message
    assert "INGEST_PARSE_MEMORY_MB" in job.error_message
    assert job.document_id is not None
    document = db.store.get_document(job.document_id)
    assert document is not None
    assert document.status == "failed"

    small = submit_one(env, make_docx(docs, "small.docx", [prose(60, 31)], [["a", "b"]]))
    job = wait_finished(db, [small], timeout=120, alive=[worker])[small]
    assert job.status == "succeeded", (job.error_type, job.error_message)
    only_worker_is(db, worker)
    assert ran_on(worker, small)


# --- cancelling ------------------------------------------------------------------------


def test_cancel_a_queued_job_and_a_running_one(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    docs = tmp_path / "docs"
    queued = submit_one(queue_env, make_txt(docs, "queued.txt", prose(80, 41)))

    [view] = run_cli_json(queue_env, "jobs", "cancel", queued)["jobs"]
    assert view["status"] == "cancelled"  # no worker is running: at once
    assert view["finished_at"] is not None
    assert db.job(queued).status == "cancelled"

    large = make_txt(docs, "large.txt", prose(LARGE_DOC_WORDS, 42))
    running = submit_one(queue_env, large)
    worker = spawn.worker(queue_env, concurrency=1)
    wait_for_job(db, running, embedding, timeout=150, what="embedding", alive=[worker])

    [view] = run_cli_json(queue_env, "jobs", "cancel", running)["jobs"]
    assert view["cancel_requested"] is True
    assert view["status"] in ("running", "cancelled")
    job = wait_finished(db, [running], timeout=60, alive=[worker])[running]
    assert (job.status, job.error_type) == ("cancelled", "cancelled")
    assert job.progress < 1.0

    # Neither document got chunks; the cancelled job's never became "ready".
    for job_id in (queued, running):
        document_id = db.job(job_id).document_id
        assert document_id is not None
        document = db.store.get_document(document_id)
        assert document is not None
        assert document.status != "ready"
        assert document.chunk_count == 0
        assert chunk_rows(db, document_id) == 0
    assert db.store.counts()["chunks"] == 0
    # The worker never picked up the job cancelled while queued.
    assert f"job {queued}" not in worker.log_text()


# --- redis is only a doorbell -------------------------------------------------------------


def test_jobs_survive_an_emptied_redis(
    tmp_path: Path,
    queue_env: dict[str, str],
    redis_server: RedisServer,
    spawn: Spawner,
    db: Database,
    fake_openai: FakeOpenAI,
) -> None:
    env = openai_env(queue_env, fake_openai)
    docs = tmp_path / "docs"
    for i in range(10):
        make_txt(docs, f"note{i}.txt", prose(60, 50 + i))
    job_ids = [j["job_id"] for j in submit(env, docs)]
    assert len(job_ids) == 10
    assert redis_server.llen("ingest:queue:ingest") == 10

    redis_server.flushall()
    assert redis_server.llen("ingest:queue:ingest") == 0

    worker = spawn.worker(env, concurrency=2)
    finished = wait_finished(db, job_ids, timeout=120, alive=[worker])
    assert {j.status for j in finished.values()} == {"succeeded"}
    assert db.store.counts()["by_status"] == {"ready": 10}
    assert len(fake_openai.requests) == 10


# --- the scheduler ---------------------------------------------------------------------


def maintenance_jobs(db: Database) -> list[sa.Row[Any]]:
    with db.store.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(
                    jobs_table.c.id,
                    jobs_table.c.kind,
                    jobs_table.c.status,
                    jobs_table.c.idempotency_key,
                    jobs_table.c.payload,
                ).where(jobs_table.c.queue == "maintenance")
            )
        )


def test_two_schedulers_enqueue_each_maintenance_slot_once(
    queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    env = {
        **queue_env,
        "INGEST_MAINTENANCE_INTERVAL_SECONDS": "1",
        "INGEST_SCHEDULER_TICK_SECONDS": "0.2",  # both replicas race for every slot
    }
    schedulers = [spawn.ingest(env, "scheduler", name="scheduler") for _ in range(2)]
    worker = spawn.worker(env, queues="maintenance", concurrency=2)
    everyone = [*schedulers, worker]

    def slots_seen() -> set[int]:
        return {int(r.payload["slot"]) for r in maintenance_jobs(db)}

    def both_schedulers_ticked() -> bool:
        return all("scheduler started" in s.log_text() for s in schedulers)

    wait_until(both_schedulers_ticked, 60, message="both schedulers to start", alive=everyone)
    wait_until(lambda: len(slots_seen()) >= 4, 60, message="four slots", alive=everyone)
    for scheduler in schedulers:
        scheduler.terminate()
    for scheduler in schedulers:
        assert scheduler.wait(timeout=30) == 0, scheduler.log_tail()

    rows = maintenance_jobs(db)
    wait_finished(db, [r.id for r in rows], timeout=120, alive=[worker])
    rows = maintenance_jobs(db)

    keys = [r.idempotency_key for r in rows]
    assert len(keys) == len(set(keys))
    kinds_by_slot: dict[int, list[str]] = defaultdict(list)
    for r in rows:
        assert r.idempotency_key == f"{r.kind}:{r.payload['slot']}"
        kinds_by_slot[int(r.payload["slot"])].append(r.kind)
    assert len(kinds_by_slot) >= 4
    for slot, kinds in kinds_by_slot.items():
        assert sorted(kinds) == sorted(TASKS), (slot, kinds)
    assert {r.status for r in rows} == {"succeeded"}, [
        (r.kind, r.status) for r in rows if r.status != "succeeded"
    ]
    assert all(r.status in TERMINAL for r in rows)

    status = run_cli_json(env, "status")
    integrity = status["integrity"]
    assert integrity is not None
    assert integrity["ok"] is True
    assert integrity["documents_without_chunks"] == 0
    assert integrity["chunks_without_vectors"] == 0
    assert integrity["staged_files_missing"] == 0
    assert status["jobs"]["maintenance"] == {"succeeded": len(rows)}


# --- burst mode -----------------------------------------------------------------------------


def test_a_burst_worker_drains_its_queues_and_exits(
    tmp_path: Path,
    queue_env: dict[str, str],
    spawn: Spawner,
    db: Database,
    fake_openai: FakeOpenAI,
) -> None:
    env = openai_env(queue_env, fake_openai)
    docs = tmp_path / "docs"
    for i in range(3):
        make_txt(docs, f"note{i}.txt", prose(60, 70 + i))
    job_ids = [j["job_id"] for j in submit(env, docs)]
    # Work for another queue, which this worker does not take, must not keep it.
    other = db.ledger.submit(NewJob(kind=INTEGRITY, payload={}, queue="maintenance"))

    worker = spawn.worker(env, queues="ingest", concurrency=1, extra=["--burst"])
    assert worker.wait(timeout=120) == 0, worker.log_tail()

    finished = db.ledger.get_many(job_ids)
    assert {j.status for j in finished} == {"succeeded"}
    assert db.job(other.id).status == "queued"
    assert "burst: queue drained, exiting" in worker.log_text()


# --- a live worker keeps its jobs ------------------------------------------------------------

LEASE_DOC_WORDS = 26_000  # ~140 chunks: ~20 s of embedding, several leases long


def expire_lease(db: Database, job_id: str, attempt: int) -> None:
    """What a pause longer than the lease leaves in the ledger: this attempt's lease
    has run out while its worker lives on."""
    with write_transaction(db.store.engine) as conn:
        conn.execute(
            sa.update(jobs_table)
            .where(
                jobs_table.c.id == job_id,
                jobs_table.c.attempt == attempt,
                jobs_table.c.status == "running",
            )
            .values(lease_expires_at=0)
        )


def assert_each_succeeded_once(db: Database, finished: dict[str, Job]) -> None:
    """Every job succeeded, every document is ready, no chunk is duplicated."""
    assert {j.status for j in finished.values()} == {"succeeded"}, {
        j.id: (j.status, j.attempt, j.error_type) for j in finished.values()
    }
    for job in finished.values():
        assert job.document_id is not None
        document = db.store.get_document(job.document_id)
        assert document is not None
        assert document.status == "ready"
        assert chunk_rows(db, job.document_id) == document.chunk_count
    assert duplicate_chunk_count(db.store) == 0


def requeued_by_a_reaper(procs: Sequence[Proc]) -> list[str]:
    """Log lines of workers and schedulers that requeued a job whose lease expired."""
    markers = ("whose worker stopped responding", "with expired leases")
    return [
        line for p in procs for line in p.log_text().splitlines() if any(m in line for m in markers)
    ]


def test_a_lease_that_expires_under_a_live_worker_still_ends_succeeded_once(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    # Attempt 1's lease runs out mid-embedding (as after a pause) and the scheduler
    # requeues it; the same worker, alive all along, claims attempt 2 while attempt 1
    # still winds down. Attempt 1 must give up without touching attempt 2, whose
    # lease must be renewed to the end: it once went unrenewed, and the job went
    # dead after three attempts on a healthy worker.
    env = {**queue_env, "INGEST_SCHEDULER_TICK_SECONDS": "0.2"}
    large = make_txt(tmp_path / "docs", "large.txt", prose(LEASE_DOC_WORDS, 61))
    job_id = submit_one(env, large)
    worker = spawn.worker(env, concurrency=2)
    scheduler = spawn.ingest(env, "scheduler", name="scheduler")
    everyone = [worker, scheduler]
    wait_for_job(db, job_id, embedding, timeout=150, what="embedding", alive=everyone)

    def requeued() -> bool:
        expire_lease(db, job_id, attempt=1)
        job = db.job(job_id)
        return job.attempt >= 2 or job.is_terminal

    wait_until(requeued, 60, message="the scheduler to requeue attempt 1", alive=everyone)

    job = wait_finished(db, [job_id], timeout=150, alive=everyone)[job_id]
    assert (job.status, job.attempt) == ("succeeded", 2), (job.error_type, job.error_message)
    assert_each_succeeded_once(db, {job_id: job})
    log = worker.log_text()
    assert f"job {job_id}: attempt 1 lost its lease" in log
    assert log.count(f"job {job_id} finished in ") == 1
    assert db.store.counts()["by_status"] == {"ready": 1}


def test_a_worker_paused_for_less_than_its_lease_loses_no_job(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    # A pause shorter than the lease less one heartbeat: every lease is renewed in
    # time, so the scheduler beside it, which would requeue a lapsed one, has nothing
    # to take.
    env = {**queue_env, "INGEST_LEASE_SECONDS": "10", "INGEST_SCHEDULER_TICK_SECONDS": "0.2"}
    docs = tmp_path / "docs"
    make_txt(docs, "large-a.txt", prose(PROGRESS_DOC_WORDS, 62))
    make_txt(docs, "large-b.txt", prose(PROGRESS_DOC_WORDS, 63))
    for i in range(3):
        make_txt(docs, f"small{i}.txt", prose(80, 64 + i))
    job_ids = [j["job_id"] for j in submit(env, docs)]
    worker = spawn.worker(env, concurrency=2)
    scheduler = spawn.ingest(env, "scheduler", name="scheduler")
    everyone = [worker, scheduler]
    wait_until(
        lambda: any(embedding(j) for j in db.ledger.get_many(job_ids)),
        150,
        message="a job embedding",
        alive=everyone,
    )

    pause(worker, seconds=5)

    finished = wait_finished(db, job_ids, timeout=150, alive=everyone)
    assert_each_succeeded_once(db, finished)
    assert {j.attempt for j in finished.values()} == {1}
    assert requeued_by_a_reaper(everyone) == []


def test_a_lone_worker_paused_past_its_lease_keeps_its_jobs(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    # Paused well past the lease with no other process to requeue its jobs (a
    # single-worker deployment): on waking, the worker must renew its jobs, not
    # requeue them itself. It once did, re-ran them, and left some dead.
    docs = tmp_path / "docs"
    make_txt(docs, "large-a.txt", prose(PROGRESS_DOC_WORDS, 72))
    make_txt(docs, "large-b.txt", prose(PROGRESS_DOC_WORDS, 73))
    job_ids = [j["job_id"] for j in submit(queue_env, docs)]
    worker = spawn.worker(queue_env, concurrency=2)
    wait_until(
        lambda: any(embedding(j) for j in db.ledger.get_many(job_ids)),
        150,
        message="a job embedding",
        alive=[worker],
    )

    pause(worker, seconds=10)  # the lease is 6 s

    finished = wait_finished(db, job_ids, timeout=150, alive=[worker])
    assert_each_succeeded_once(db, finished)
    assert {j.attempt for j in finished.values()} == {1}
    assert requeued_by_a_reaper([worker]) == []
    assert "past the 6 s lease" in worker.log_text()  # it noticed, and said so


def pause(proc: Proc, *, seconds: float) -> None:
    """SIGSTOP, then SIGCONT: a process frozen as by a long GC pause or a busy host."""
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)  # the pause under test, not a wait for an event
    finally:
        os.kill(proc.pid, signal.SIGCONT)


def test_a_busy_cpu_does_not_cost_a_live_worker_its_jobs(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    # Two processes spin on this machine's cores while a fresh worker loads its model
    # and runs jobs beside a scheduler: its first job used to be requeued as "worker
    # stopped responding" while the model loaded inside its lease.
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(2)
    ]
    try:
        docs = tmp_path / "docs"
        make_txt(docs, "medium.txt", prose(PROGRESS_DOC_WORDS // 2, 81))
        for i in range(4):
            make_txt(docs, f"small{i}.txt", prose(80, 82 + i))
        job_ids = [j["job_id"] for j in submit(queue_env, docs)]
        worker = spawn.worker(queue_env, concurrency=2)
        scheduler = spawn.ingest(queue_env, "scheduler", name="scheduler")
        everyone = [worker, scheduler]

        finished = wait_finished(db, job_ids, timeout=240, alive=everyone)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait(timeout=10)
    assert_each_succeeded_once(db, finished)
    assert {j.attempt for j in finished.values()} == {1}
    assert requeued_by_a_reaper(everyone) == []
    # The model loaded before the first claim, not inside a job.
    log = worker.log_text()
    first_job = re.search(r"job \S+ \(ingest\) attempt \d+/\d+ started", log)
    assert first_job is not None, log
    assert "embedder ready" in log[: first_job.start()], log
