"""The HTTP API as it is deployed: `ingest serve` processes (inline or queue mode), a
real redis-server, `python -m ingest.worker`, and httpx as the client. Processes are
killed with SIGKILL the way a crashed host or the OOM killer would, and restarted on
the same database and incoming folder.

Every wait polls against a deadline; nothing sleeps blindly.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.store import Store
from tests.acceptance.conftest import Database
from tests.fixtures_docs import make_html, make_md, make_txt, prose
from tests.support.processes import (
    Proc,
    Spawner,
    free_port,
    run_cli_json,
    wait_http_ok,
    wait_until,
)
from tests.support.sse import json_events
from tests.support.store_checks import duplicate_chunk_count

pytestmark = pytest.mark.slow


# ~190 words make one chunk with the default chunker (254 tokens).
LARGE_DOC_WORDS = 7_600  # ~40 chunks: five embedding batches of 8
MEDIUM_DOC_WORDS = 3_000  # ~16 chunks

# Words that appear nowhere in `prose`, so exactly one document is about them.
AXOLOTL = (
    "The axolotl hatchery at Quillonbrook keeps seventeen albino axolotls in "
    "chilled limestone tanks, fed on bloodworms every Thursday."
)
AXOLOTL_QUERY = "axolotl hatchery Quillonbrook albino axolotls limestone tanks"
PANGOLIN = (
    "Pangolin sanctuary volunteers in Zarvenhollow weigh every rescued pangolin "
    "on a brass scale before the monsoon migration."
)
PANGOLIN_QUERY = "pangolin sanctuary Zarvenhollow rescued pangolin brass scale"

UNLIMITED = "100000/minute"  # status polling must not trip the per-key limit


# --- environments, keys, servers ----------------------------------------------------------


def inline_env(queue_env: dict[str, str]) -> dict[str, str]:
    """The same database and incoming folder, but one `ingest serve` does everything."""
    env = {k: v for k, v in queue_env.items() if k != "REDIS_URL"}
    env.update({"INGEST_MODE": "inline", "INGEST_RATE_LIMIT": UNLIMITED})
    return env


def create_key(env: dict[str, str], role: str = "editor") -> str:
    created = run_cli_json(env, "keys", "create", "--role", role, "--name", f"test-{role}")
    assert created["role"] == role
    key: str = created["key"]
    assert key.startswith("ingk_")
    return key


def start_api(spawn: Spawner, env: dict[str, str], port: int, *, name: str = "api") -> Proc:
    """`ingest serve` on `port`, once it answers /health/live."""
    proc = spawn.serve(env, port, name=name)
    wait_http_ok(f"http://127.0.0.1:{port}/health/live", 60, alive=[proc])
    return proc


def kill_hard(proc: Proc) -> None:
    """SIGKILL the server and everything it spawned (its parser pool), as a host crash would."""
    proc.kill_group()
    assert proc.returncode == -9, proc.returncode


class Api:
    """A client of one API process, with one key."""

    def __init__(self, port: int, key: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(60.0, connect=5.0),
        )

    def close(self) -> None:
        self.http.close()

    def upload(self, paths: Sequence[Path], **form: str) -> list[dict[str, Any]]:
        files = [("files", (p.name, p.read_bytes(), "text/plain")) for p in paths]
        response = self.http.post("/api/v1/documents", files=files, data=form)
        assert response.status_code == 202, response.text
        jobs: list[dict[str, Any]] = response.json()["jobs"]
        assert [j["filename"] for j in jobs] == [p.name for p in paths]
        assert all(j["status"] == "queued" for j in jobs), jobs
        return jobs

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    def wait_job(
        self,
        job_id: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float,
        what: str,
        alive: Sequence[Proc],
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if predicate(job) else None

        message = f"job {job_id}: {what}"
        return wait_until(check, timeout, interval=0.1, message=message, alive=alive)

    def wait_succeeded(
        self, job_ids: Sequence[str], timeout: float, alive: Sequence[Proc]
    ) -> dict[str, dict[str, Any]]:
        """Poll GET /api/v1/jobs/{id} for every job until all succeeded; fail at once on
        a job that ended otherwise."""
        done: dict[str, dict[str, Any]] = {}

        def all_succeeded() -> bool:
            for job_id in job_ids:
                if job_id in done:
                    continue
                job = self.job(job_id)
                if job["status"] == "succeeded":
                    done[job_id] = job
                else:
                    assert job["status"] in ("queued", "running"), job
            return len(done) == len(job_ids)

        wait_until(
            all_succeeded,
            timeout,
            interval=0.25,
            message=f"{len(job_ids)} job(s) to succeed",
            alive=alive,
        )
        return done

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        response = self.http.post("/api/v1/search", json={"query": query, "k": k})
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def chat(self, message: str, session_id: str | None = None) -> list[tuple[str, Any]]:
        body: dict[str, Any] = {"message": message}
        if session_id is not None:
            body["session_id"] = session_id
        with self.http.stream("POST", "/api/v1/chat", json=body) as response:
            assert response.status_code == 200, response.read().decode()
            assert response.headers["content-type"].startswith("text/event-stream")
            return list(json_events(response))


def check_done_event(events: list[tuple[str, Any]]) -> dict[str, Any]:
    """Token events, then exactly one done event, last; the answer is the tokens joined."""
    names = [name for name, _ in events]
    assert names[-1] == "done", names
    assert names.count("done") == 1
    assert set(names[:-1]) == {"token"}, names
    done: dict[str, Any] = events[-1][1]
    assert "".join(data["text"] for _, data in events[:-1]) == done["answer"]
    return done


# --- 1. the whole API in queue mode -------------------------------------------------------


@pytest.mark.timeout(240)
def test_queue_mode_upload_follow_events_search_and_chat(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    env = {**queue_env, "INGEST_RATE_LIMIT": UNLIMITED}
    docs = tmp_path / "docs"
    # The distinctive document is uploaded first, so it is among the first jobs claimed
    # and still running while the worker starts its parser pool: its stream shows "running".
    # A web page: UTF-8 text and Markdown parse inline, without the pool.
    special = make_html(docs, "axolotls.html", AXOLOTL, "Home | Care | Contact", "Footer")
    paths = [special] + [
        make_txt(docs, f"note{i:02}.txt", prose(120, i))
        if i % 2
        else make_md(docs, f"page{i:02}.md", f"# Page {i}\n\n{prose(120, i)}")
        for i in range(1, 50)
    ]

    key = create_key(env, "editor")
    port = free_port()
    server = start_api(spawn, env, port)
    api = Api(port, key)
    try:
        jobs: list[dict[str, Any]] = []
        for start in range(0, 50, 13):  # four multipart requests: 13, 13, 13, 11 files
            jobs += api.upload(paths[start : start + 13], metadata='{"batch": "acceptance"}')
        assert len(jobs) == 50
        job_ids = [j["job_id"] for j in jobs]
        assert len(set(job_ids)) == 50
        assert len({j["document_id"] for j in jobs}) == 50
        [followed] = [j for j in jobs if j["filename"] == "axolotls.html"]

        # Follow one job from before any worker exists until it ends.
        worker: Proc | None = None
        seen: list[tuple[str, Any]] = []
        with api.http.stream("GET", f"/api/v1/jobs/{followed['job_id']}/events") as response:
            assert response.status_code == 200, response.read().decode()
            assert response.headers["content-type"].startswith("text/event-stream")
            for name, data in json_events(response):
                seen.append((name, data))
                if worker is None:
                    worker = spawn.worker(env, concurrency=2)
                if name == "end":
                    break
        assert worker is not None
        names = [name for name, _ in seen]
        assert names[-1] == "end", names
        assert names.count("end") == 1, names
        assert set(names[:-1]) == {"job"}, names
        statuses = [data["status"] for name, data in seen if name == "job"]
        assert statuses[0] == "queued", statuses
        assert "running" in statuses, statuses
        assert statuses[-1] == "succeeded", statuses
        last_job = seen[-2][1]
        assert last_job["job_id"] == followed["job_id"]
        assert last_job["document_id"] == followed["document_id"]
        assert last_job["progress"] == 1.0
        assert last_job["result"]["outcome"] == "added"
        assert seen[-1][1] == {"job_id": followed["job_id"], "status": "succeeded"}

        finished = api.wait_succeeded(job_ids, timeout=150, alive=[server, worker])
        assert all(j["attempt"] == 1 for j in finished.values())
        assert all(j["result"]["chunks"] >= 1 for j in finished.values())
        assert db.store.counts()["by_status"] == {"ready": 50}
        assert duplicate_chunk_count(db.store) == 0

        document = api.http.get(f"/api/v1/documents/{followed['document_id']}").json()
        assert document["status"] == "ready"
        assert document["source"] == "upload://default/axolotls.html"
        assert document["metadata"]["batch"] == "acceptance"

        results = api.search(AXOLOTL_QUERY)
        assert results, "search found nothing"
        assert results[0]["document_id"] == followed["document_id"], results[0]
        assert "Quillonbrook" in results[0]["text"]

        events = api.chat("Where is the axolotl hatchery and what are the axolotls fed?")
        done = check_done_event(events)
        assert len(events) >= 3  # streamed: several token events
        assert "Quillonbrook" in done["answer"]
        assert done["history_messages"] == 0
        assert done["citations"], done
        first = done["citations"][0]
        assert first["n"] == 1
        assert first["document_id"] == followed["document_id"]
        chunks = api.http.get(f"/api/v1/documents/{first['document_id']}/chunks").json()
        assert first["chunk_id"] in {c["chunk_id"] for c in chunks["chunks"]}
        for citation in done["citations"]:
            cited = api.http.get(f"/api/v1/documents/{citation['document_id']}")
            assert cited.status_code == 200, citation
            assert cited.json()["source"] == citation["source"]
    finally:
        api.close()


# --- 2. two API replicas share rate limits and chat memory ---------------------------------


@pytest.mark.timeout(180)
def test_two_api_processes_share_rate_limits_and_conversation_memory(
    queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    env = {**queue_env, "INGEST_RATE_LIMIT": "6/minute"}
    limited_key = create_key(env, "viewer")
    chat_key = create_key(env, "viewer")  # its own budget: 2 chats, far under 6
    port_a, port_b = free_port(), free_port()
    assert port_a != port_b
    server_a = spawn.serve(env, port_a, name="api-a")
    server_b = spawn.serve(env, port_b, name="api-b")
    for port, server in ((port_a, server_a), (port_b, server_b)):
        wait_http_ok(f"http://127.0.0.1:{port}/health/live", 60, alive=[server])

    a, b = Api(port_a, limited_key), Api(port_b, limited_key)
    chat_a, chat_b = Api(port_a, chat_key), Api(port_b, chat_key)
    try:
        for _ in range(3):
            for api in (a, b):
                response = api.http.get("/api/v1/jobs")
                assert response.status_code == 200, response.text
        for api in (a, b):  # the 7th request, on either replica, is over the shared limit
            response = api.http.get("/api/v1/jobs")
            assert response.status_code == 429, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["type"] == "urn:ingest:problem:rate-limited"
            assert 1 <= int(response.headers["Retry-After"]) <= 60
        # Another key is not affected.
        assert chat_a.http.get("/api/v1/jobs").status_code == 200

        session = "shared-session-1"
        first = check_done_event(chat_a.chat("What does the survey report say?", session))
        assert first["session_id"] == session
        assert first["history_messages"] == 0
        second = check_done_event(chat_b.chat("And what about the budget?", session))
        assert second["session_id"] == session
        assert second["history_messages"] == 2  # the question and answer given by API A
        other = check_done_event(chat_b.chat("Hello?", "another-session"))
        assert other["history_messages"] == 0
        assert server_a.alive
        assert server_b.alive
    finally:
        for api in (a, b, chat_a, chat_b):
            api.close()


# --- 3. inline: the server dies in the middle of a job --------------------------------------


def embedding_batches_committed(job: dict[str, Any]) -> bool:
    """Running, in the embed stage, with at least two batches of 8 done."""
    return bool(job["status"] == "running" and job["stage"] == "embed" and job["current"] >= 16)


@pytest.mark.timeout(300)
def test_inline_server_killed_mid_job_resumes_after_restart_without_duplicates(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    env = inline_env(queue_env)
    key = create_key(env, "editor")
    large = make_txt(tmp_path / "docs", "large-report.txt", prose(LARGE_DOC_WORDS, 11))
    port = free_port()
    first = start_api(spawn, env, port, name="api-1")
    api = Api(port, key)
    try:
        [queued] = api.upload([large])
        job_id, document_id = queued["job_id"], queued["document_id"]
        running = api.wait_job(
            job_id, embedding_batches_committed, 120, "embedding batches", alive=[first]
        )
        assert running["attempt"] == 1
        assert running["total"] >= 35, running  # ~40 chunks
        kill_hard(first)
        interrupted = db.job(job_id)
        assert (interrupted.status, interrupted.attempt) == ("running", 1)

        second = start_api(spawn, env, port, name="api-2")  # same port, DB and incoming dir
        job = api.wait_job(
            job_id, lambda j: j["status"] not in ("queued", "running"), 150, "to end", [second]
        )
        assert job["status"] == "succeeded", job
        assert job["attempt"] == 2
        result = job["result"]
        assert result["outcome"] == "added"
        assert result["chunks"] == running["total"]
        # The batches attempt 1 committed were not embedded again.
        assert 0 < result["embedded"] < result["chunks"], result

        store = Store.open(env["DATABASE_URL"])
        try:
            assert duplicate_chunk_count(store) == 0
            document = store.get_document(document_id)
            assert document is not None
            assert document.status == "ready"
            chunks = store.chunks_of(document_id)
            assert document.chunk_count == len(chunks) == result["chunks"]
            assert sorted(c.ordinal for c in chunks) == list(range(len(chunks)))
            assert store.counts()["chunks"] == len(chunks)
        finally:
            store.close()
        # The scheduler or the worker of the new process found the dead one's lease.
        requeued = [line for line in second.log_text().splitlines() if "requeued 1 job(s)" in line]
        assert requeued, second.log_tail()
        assert job_id in requeued[0]
    finally:
        api.close()


# --- 4. the server dies right after answering 202 ------------------------------------------


def staged_bytes(env: dict[str, str], job_id: str, name: str) -> bytes:
    return (Path(env["INGEST_INCOMING_DIR"]) / job_id / name).read_bytes()


@pytest.mark.timeout(180)
def test_inline_server_killed_right_after_202_finishes_the_job_after_restart(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    env = inline_env(queue_env)
    key = create_key(env, "editor")
    doc = make_txt(
        tmp_path / "docs", "pangolins.txt", f"{PANGOLIN}\n\n{prose(MEDIUM_DOC_WORDS, 31)}"
    )
    port = free_port()
    first = start_api(spawn, env, port, name="api-1")
    api = Api(port, key)
    try:
        [queued] = api.upload([doc])
        kill_hard(first)
        job_id, document_id = queued["job_id"], queued["document_id"]
        # The embedding model was not even loaded yet: the job cannot have finished.
        assert db.job(job_id).status in ("queued", "running")
        assert staged_bytes(env, job_id, doc.name) == doc.read_bytes()

        second = start_api(spawn, env, port, name="api-2")
        job = api.wait_job(
            job_id, lambda j: j["status"] not in ("queued", "running"), 120, "to end", [second]
        )
        assert job["status"] == "succeeded", job
        [shown] = run_cli_json(env, "jobs", "show", job_id)["jobs"]
        assert shown["status"] == "succeeded"
        assert shown["document_id"] == document_id
        assert shown["result"]["outcome"] == "added"

        document = api.http.get(f"/api/v1/documents/{document_id}").json()
        assert document["status"] == "ready"
        assert document["chunk_count"] == shown["result"]["chunks"] >= 10
        results = api.search(PANGOLIN_QUERY)
        assert results, "search found nothing"
        assert results[0]["document_id"] == document_id, results[0]
        assert duplicate_chunk_count(db.store) == 0
    finally:
        api.close()


@pytest.mark.timeout(180)
def test_queue_mode_api_killed_right_after_202_a_worker_still_runs_the_job(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    env = {**queue_env, "INGEST_RATE_LIMIT": UNLIMITED}
    key = create_key(env, "editor")
    doc = make_txt(tmp_path / "docs", "pangolins.txt", f"{PANGOLIN}\n\n{prose(400, 41)}")
    port = free_port()
    server = start_api(spawn, env, port)
    api = Api(port, key)
    try:
        [queued] = api.upload([doc])
    finally:
        api.close()
    kill_hard(server)
    job_id, document_id = queued["job_id"], queued["document_id"]

    # What the dead API left behind: the fsync'd file and the committed job row.
    assert staged_bytes(env, job_id, doc.name) == doc.read_bytes()
    [shown] = run_cli_json(env, "jobs", "show", job_id)["jobs"]
    assert (shown["status"], shown["attempt"]) == ("queued", 0)
    assert shown["document_id"] == document_id

    worker = spawn.worker(env, concurrency=1)  # and no API at all
    wait_until(
        lambda: db.job(job_id).is_terminal, 90, message=f"job {job_id} to end", alive=[worker]
    )
    [shown] = run_cli_json(env, "jobs", "show", job_id)["jobs"]
    assert shown["status"] == "succeeded", shown
    assert shown["attempt"] == 1
    assert shown["result"]["outcome"] == "added"
    assert shown["result"]["chunks"] >= 1
    document = db.store.get_document(document_id)
    assert document is not None
    assert document.status == "ready"
    assert document.chunk_count == shown["result"]["chunks"]
    assert document.source_uri == "upload://default/pangolins.txt"


# --- 5. misconfiguration ---------------------------------------------------------------


@pytest.mark.timeout(60)
def test_queue_mode_without_redis_url_refuses_to_start(
    queue_env: dict[str, str], spawn: Spawner
) -> None:
    env = {k: v for k, v in queue_env.items() if k != "REDIS_URL"}
    port = free_port()
    server = spawn.serve(env, port)
    code = server.wait(timeout=30)
    elapsed = time.monotonic() - server.started_at
    assert code == 2, server.log_tail()  # the CLI's exit code for errors
    assert elapsed < 20, elapsed
    assert "error: INGEST_MODE=queue needs REDIS_URL" in server.log_text(), server.log_tail()
    with pytest.raises(httpx.TransportError):  # it never listened
        httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2)


# --- 6. a live server keeps its jobs and is ready only when it can embed ---------------------


@pytest.mark.timeout(180)
def test_inline_server_paused_past_its_lease_keeps_its_jobs(
    tmp_path: Path, queue_env: dict[str, str], spawn: Spawner, db: Database
) -> None:
    # One `ingest serve` runs everything, so no other process can requeue its jobs.
    # Frozen past the lease (a long GC pause, a busy host), on waking it must renew
    # them, not requeue them itself: it once did, re-ran them, and left jobs dead.
    env = inline_env(queue_env)
    key = create_key(env, "editor")
    port = free_port()
    server = start_api(spawn, env, port)
    api = Api(port, key)
    try:
        docs = tmp_path / "docs"
        paths = [make_txt(docs, f"large-{n}.txt", prose(LARGE_DOC_WORDS, 90 + n)) for n in (1, 2)]
        job_ids = [j["job_id"] for j in api.upload(paths)]

        def embedding() -> bool:
            return any(
                j.status == "running" and j.stage == "embed" and j.progress_current >= 8
                for j in db.ledger.get_many(job_ids)
            )

        wait_until(embedding, 150, message="a job embedding", alive=[server])
        os.kill(server.pid, signal.SIGSTOP)
        try:
            time.sleep(10)  # the pause under test (the lease is 6 s), not a wait for an event
        finally:
            os.kill(server.pid, signal.SIGCONT)

        finished = api.wait_succeeded(job_ids, timeout=150, alive=[server])
    finally:
        api.close()
    assert all(j["attempt"] == 1 for j in finished.values()), finished
    assert db.store.counts()["by_status"] == {"ready": 2}
    assert duplicate_chunk_count(db.store) == 0
    log = server.log_text()
    assert "stopped responding" not in log
    assert "expired leases" not in log
    assert "past the 6 s lease" in log  # it noticed the pause, and said so


@pytest.mark.timeout(180)
def test_ready_only_once_the_model_is_loaded(queue_env: dict[str, str], spawn: Spawner) -> None:
    env = inline_env(queue_env)
    key = create_key(env, "viewer")
    port = free_port()
    server = spawn.serve(env, port)

    ready = wait_http_ok(f"http://127.0.0.1:{port}/health/ready", 150, alive=[server])
    log_when_ready = server.log_text()
    assert ready.json()["checks"]["embedder"]["status"] == "ok", ready.json()
    assert re.search(r"embedding model \S+ loaded in", log_when_ready), server.log_tail()

    api = Api(port, key)
    try:
        assert api.search("where are the signing keys rotated") == []
    finally:
        api.close()
    # The query embedded with the model already in memory: no second load.
    assert server.log_text().count("loading the embedding model") == 1
