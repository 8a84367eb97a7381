"""The job ledger's SQL on a real SQLite file: claiming, leases, fencing, steering."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from ingest.errors import LeaseLost
from ingest.store import Claim, Job, NewJob, Store
from ingest.store.engine import write_transaction
from ingest.store.ledger import Ledger
from ingest.store.schema import jobs, staged_files
from ingest.store.staged_files import StagedFiles
from ingest.store.transaction import transaction
from ingest.vocabulary import JobStatus

LEASE = 30.0


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    """The ledger on both backends: SQLite and PostgreSQL (see tests/conftest.py)."""
    store = Store.open(database_url)
    store.migrate()
    try:
        yield store.jobs
    finally:
        store.close()


def submit(ledger: Ledger, **options: Any) -> Job:
    options.setdefault("kind", "noop")
    options.setdefault("payload", {})
    return ledger.submit(NewJob(**options))


def get(ledger: Ledger, job_id: str) -> Job:
    job = ledger.get(job_id)
    assert job is not None
    return job


def update(ledger: Ledger, job_id: str, **values: Any) -> None:
    """Change a job's columns directly: how tests make time pass."""
    with write_transaction(ledger.engine) as conn:
        conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))


def claim_one(
    ledger: Ledger, owner: str, queues: tuple[str, ...] | list[str], lease: float
) -> Claim | None:
    claims = ledger.claim_many(owner, queues, lease, 1)
    return claims[0] if claims else None


def claim(ledger: Ledger, owner: str = "w1", queues: tuple[str, ...] = ("ingest",)) -> Claim:
    got = claim_one(ledger, owner, queues, LEASE)
    assert got is not None, "expected a job to claim"
    return got


def expire(ledger: Ledger, job_id: str) -> None:
    """The worker holding the job went silent: its lease is in the past."""
    update(ledger, job_id, lease_expires_at=time.time() - 1)


def fail_outright(ledger: Ledger, c: Claim, status: str = "failed") -> None:
    assert ledger.end_attempt(c, JobStatus(status), error_type="boom", error_message="boom")


# --- claiming ---------------------------------------------------------------------


def test_claim_takes_highest_priority_first_then_oldest(ledger: Ledger) -> None:
    old_low = submit(ledger, priority=0)
    old_high = submit(ledger, priority=5)
    new_low = submit(ledger, priority=0)
    new_high = submit(ledger, priority=5)
    # Make the ages unambiguous.
    for age, job in enumerate([new_high, new_low, old_high, old_low]):
        update(ledger, job.id, created_at=1000.0 - age)

    order = [claim(ledger).job.id for _ in range(4)]

    assert order == [old_high.id, new_high.id, old_low.id, new_low.id]
    assert claim_one(ledger, "w1", ["ingest"], LEASE) is None


def test_claim_marks_the_job_running_under_a_lease(ledger: Ledger) -> None:
    job = submit(ledger)
    before = time.time()

    c = claim(ledger, owner="worker-a")

    assert c.owner == "worker-a"
    assert c.attempt == 1
    stored = get(ledger, job.id)
    assert stored.status == "running"
    assert stored.attempt == 1
    assert stored.lease_owner == "worker-a"
    assert stored.lease_expires_at is not None
    assert before + LEASE <= stored.lease_expires_at <= time.time() + LEASE
    assert stored.started_at is not None
    assert stored.started_at >= before


def test_a_worker_only_takes_jobs_from_its_queues(ledger: Ledger) -> None:
    maintenance = submit(ledger, queue="maintenance", priority=10)
    ingest = submit(ledger, queue="ingest")

    assert claim(ledger, queues=("ingest",)).job.id == ingest.id
    assert claim_one(ledger, "w1", ["ingest"], LEASE) is None
    assert get(ledger, maintenance.id).status == "queued"
    assert claim(ledger, queues=("ingest", "maintenance")).job.id == maintenance.id


def test_a_job_is_not_claimed_before_its_not_before(ledger: Ledger) -> None:
    later = submit(ledger, not_before=time.time() + 3600)

    assert claim_one(ledger, "w1", ["ingest"], LEASE) is None
    assert get(ledger, later.id).status == "queued"

    update(ledger, later.id, not_before=time.time() - 1)  # the hour has passed
    assert claim(ledger).job.id == later.id


def test_an_idempotency_key_returns_the_same_job(ledger: Ledger) -> None:
    first = submit(ledger, idempotency_key="task:42", payload={"n": 1})
    again = submit(ledger, idempotency_key="task:42", payload={"n": 2})
    other = submit(ledger, idempotency_key="task:43")

    assert again.id == first.id
    assert again.payload == {"n": 1}
    assert other.id != first.id
    assert len(ledger.list_jobs(limit=10)) == 2


def test_racing_submitters_with_one_key_get_one_job(ledger: Ledger) -> None:
    barrier = threading.Barrier(4)
    ids: list[str] = []
    lock = threading.Lock()

    def racer() -> None:
        barrier.wait()
        job = submit(ledger, idempotency_key="cleanup:7")
        with lock:
            ids.append(job.id)

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert len(ids) == 4
    assert len(set(ids)) == 1
    assert len(ledger.list_jobs(limit=10)) == 1


def test_two_threads_claiming_never_get_the_same_job(ledger: Ledger) -> None:
    submitted = {submit(ledger).id for _ in range(200)}
    barrier = threading.Barrier(2)
    taken: dict[str, list[str]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def drain(owner: str) -> None:
        try:
            barrier.wait()
            while (c := claim_one(ledger, owner, ["ingest"], LEASE)) is not None:
                taken[owner].append(c.job.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(owner,)) for owner in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    a, b = set(taken["a"]), set(taken["b"])
    assert len(a) == len(taken["a"])
    assert len(b) == len(taken["b"])
    assert not a & b
    assert a | b == submitted
    assert taken["a"], "both threads should have claimed some jobs"
    assert taken["b"], "both threads should have claimed some jobs"
    stored = ledger.get_many(sorted(submitted))
    assert {(j.status, j.attempt) for j in stored} == {("running", 1)}
    owners = {j.id: j.lease_owner for j in stored}
    assert all(owners[i] == "a" for i in a)
    assert all(owners[i] == "b" for i in b)


# --- leases ---------------------------------------------------------------------------


def test_heartbeat_extends_the_lease(ledger: Ledger) -> None:
    submit(ledger)
    c = claim_one(ledger, "w1", ["ingest"], 5.0)
    assert c is not None
    first = get(ledger, c.job.id).lease_expires_at
    assert first is not None

    assert ledger.heartbeat(c, 600.0) is True

    extended = get(ledger, c.job.id).lease_expires_at
    assert extended is not None
    assert extended >= first + 590
    assert get(ledger, c.job.id).status == "running"


def test_reaping_requeues_an_expired_job_and_counts_the_attempt(ledger: Ledger) -> None:
    job = submit(ledger, max_attempts=3)
    c = claim(ledger)
    alive = submit(ledger)
    claim(ledger, owner="w2")  # a healthy lease: not reaped
    expire(ledger, job.id)

    assert ledger.reap_expired() == [job.id]

    reaped = get(ledger, job.id)
    assert reaped.status == "queued"
    assert reaped.attempt == 1  # the lost attempt counts
    assert reaped.error_type == "lease_expired"
    assert reaped.lease_owner is None
    assert reaped.lease_expires_at is None
    assert reaped.finished_at is None
    assert get(ledger, alive.id).status == "running"
    assert ledger.reap_expired() == []

    again = claim(ledger)
    assert again.job.id == job.id
    assert again.attempt == c.attempt + 1 == 2


def test_a_reaper_spares_the_attempts_its_own_worker_is_running(ledger: Ledger) -> None:
    """A worker knows its running attempts are alive, however late their renewal:
    its reaper leaves them, and still requeues another worker's lapsed job."""
    mine_job, theirs_job = submit(ledger), submit(ledger)
    mine = claim(ledger, owner="w1")
    claim(ledger, owner="w2")
    assert mine.job.id == mine_job.id
    expire(ledger, mine_job.id)
    expire(ledger, theirs_job.id)

    assert ledger.reap_expired(spare=[mine]) == [theirs_job.id]
    assert get(ledger, mine_job.id).status == "running"

    lost = ledger.renew_leases([mine], LEASE)  # the late renewal still holds
    assert lost == []
    renewed = get(ledger, mine_job.id).lease_expires_at
    assert renewed is not None
    assert renewed > time.time() + LEASE / 2
    assert ledger.reap_expired() == []


def test_renewing_reports_the_leases_that_were_lost(ledger: Ledger) -> None:
    kept_job, lost_job = submit(ledger), submit(ledger)
    kept = claim(ledger)
    lost = claim(ledger)
    assert (kept.job.id, lost.job.id) == (kept_job.id, lost_job.id)
    expire(ledger, lost_job.id)
    assert ledger.reap_expired() == [lost_job.id]

    assert ledger.renew_leases([kept, lost], LEASE) == [lost]
    assert get(ledger, kept_job.id).status == "running"
    assert get(ledger, lost_job.id).status == "queued"  # the lost one is not revived


def test_a_job_is_dead_after_its_last_attempt_expires(ledger: Ledger) -> None:
    job = submit(ledger, max_attempts=2)
    for attempt in (1, 2):
        c = claim(ledger)
        assert c.attempt == attempt
        expire(ledger, job.id)
        assert ledger.reap_expired() == [job.id]

    dead = get(ledger, job.id)
    assert dead.status == "dead"
    assert dead.attempt == 2
    assert dead.finished_at is not None
    assert claim_one(ledger, "w1", ["ingest"], LEASE) is None


def test_an_expired_job_with_a_cancel_request_ends_cancelled(ledger: Ledger) -> None:
    job = submit(ledger)
    claim(ledger)
    ledger.cancel(job.id)
    expire(ledger, job.id)

    assert ledger.reap_expired() == [job.id]
    assert get(ledger, job.id).status == "cancelled"


# --- fencing ---------------------------------------------------------------------------


@pytest.mark.parametrize("second_owner", ["w2", "w1"])
def test_a_stale_claim_can_write_nothing_after_a_reap_and_reclaim(
    ledger: Ledger, second_owner: str
) -> None:
    """w1's attempt 1 is reaped and the job re-claimed (by another worker, or by w1
    itself): everything attempt 1 still tries to write is fenced out."""
    job = submit(ledger)
    stale = claim(ledger, owner="w1")
    expire(ledger, job.id)
    ledger.reap_expired()
    current = claim(ledger, owner=second_owner)
    assert current.attempt == 2
    snapshot = get(ledger, job.id)

    def stale_success_with_other_writes() -> None:
        with transaction(ledger.engine) as tx:
            tx.staged_files.record(job_id=job.id, path="x", size=1, sha256="0" * 64)
            tx.jobs.succeed(stale, {"chunks": 1}, [])

    with pytest.raises(LeaseLost):
        stale_success_with_other_writes()
    assert ledger.end_attempt(stale, JobStatus.FAILED, error_type="x", error_message="x") is False
    assert ledger.end_attempt(stale, JobStatus.QUEUED, retry_at=time.time()) is False
    with pytest.raises(LeaseLost):
        ledger.report_progress(
            stale, stage="embed", current=5, total=10, fraction=0.5, message="stale", stages=[]
        )
    assert ledger.heartbeat(stale, LEASE) is False
    assert ledger.hand_back(stale) is False

    assert get(ledger, job.id) == snapshot  # not one column changed
    with write_transaction(ledger.engine) as conn:  # the succeed() transaction rolled back
        assert conn.execute(sa.select(sa.func.count()).select_from(staged_files)).scalar() == 0

    ledger.report_progress(
        current, stage="embed", current=1, total=2, fraction=0.5, message="mine", stages=[]
    )
    with transaction(ledger.engine) as tx:
        tx.jobs.succeed(current, {"chunks": 1}, [{"stage": "embed"}])
    done = get(ledger, job.id)
    assert (done.status, done.attempt, done.result) == ("succeeded", 2, {"chunks": 1})
    assert done.progress == 1.0


def test_outcomes_cannot_be_written_twice(ledger: Ledger) -> None:
    job = submit(ledger)
    c = claim(ledger)
    with transaction(ledger.engine) as tx:
        tx.jobs.succeed(c, {}, [])

    assert ledger.end_attempt(c, JobStatus.FAILED, error_type="x", error_message="x") is False
    with pytest.raises(LeaseLost), transaction(ledger.engine) as tx:
        tx.jobs.succeed(c, {"again": True}, [])
    assert get(ledger, job.id).status == "succeeded"
    assert get(ledger, job.id).result == {}


def test_a_failed_attempt_with_attempts_left_is_queued_for_later(ledger: Ledger) -> None:
    job = submit(ledger)
    c = claim(ledger)
    retry_at = time.time() + 3600

    assert ledger.end_attempt(c, JobStatus.QUEUED, error_type="embedding_error", retry_at=retry_at)

    queued = get(ledger, job.id)
    assert (queued.status, queued.attempt, queued.not_before) == ("queued", 1, retry_at)
    assert queued.finished_at is None
    assert claim_one(ledger, "w1", ["ingest"], LEASE) is None


# --- steering -----------------------------------------------------------------------------


def test_cancelling_a_queued_job_is_immediate(ledger: Ledger) -> None:
    job = submit(ledger)

    cancelled = ledger.cancel(job.id)

    assert cancelled is not None
    assert cancelled.status == "cancelled"
    assert cancelled.finished_at is not None
    assert claim_one(ledger, "w1", ["ingest"], LEASE) is None
    assert ledger.cancel("no-such-job") is None


def test_cancelling_a_running_job_asks_it_to_stop(ledger: Ledger) -> None:
    job = submit(ledger)
    c = claim(ledger)
    assert ledger.cancel_requested(job.id) is False

    flagged = ledger.cancel(job.id)

    assert flagged is not None
    assert (flagged.status, flagged.cancel_requested) == ("running", True)
    assert ledger.cancel_requested(job.id) is True
    # The worker stops at its next checkpoint and records it, still fenced.
    assert ledger.end_attempt(c, JobStatus.CANCELLED, error_type="cancelled")
    assert get(ledger, job.id).status == "cancelled"


def test_cancelling_a_finished_job_changes_nothing(ledger: Ledger) -> None:
    job = submit(ledger)
    c = claim(ledger)
    with transaction(ledger.engine) as tx:
        tx.jobs.succeed(c, {}, [])

    after = ledger.cancel(job.id)

    assert after is not None
    assert (after.status, after.cancel_requested) == ("succeeded", False)


@pytest.mark.parametrize("status", ["failed", "dead", "cancelled"])
def test_retry_requeues_a_finished_job_with_fresh_attempts(ledger: Ledger, status: str) -> None:
    job = submit(ledger, max_attempts=3)
    c = claim(ledger)
    update(ledger, job.id, attempt=3, cancel_requested=status == "cancelled")
    c = Claim(get(ledger, job.id), c.owner)
    fail_outright(ledger, c, status)

    retried = ledger.retry(job.id)

    assert retried is not None
    assert (retried.status, retried.attempt) == ("queued", 0)
    assert retried.cancel_requested is False
    assert retried.finished_at is None
    again = claim(ledger)
    assert (again.job.id, again.attempt) == (job.id, 1)


def test_retry_leaves_queued_running_and_succeeded_jobs_alone(ledger: Ledger) -> None:
    queued = submit(ledger, priority=-1)
    running = submit(ledger, priority=2)
    succeeded = submit(ledger, priority=1)
    assert claim(ledger).job.id == running.id
    c = claim(ledger)
    assert c.job.id == succeeded.id
    with transaction(ledger.engine) as tx:
        tx.jobs.succeed(c, {}, [])

    for job_id, status in ((queued.id, "queued"), (running.id, "running")):
        retried = ledger.retry(job_id)
        assert retried is not None
        assert retried.status == status
    done = ledger.retry(succeeded.id)
    assert done is not None
    assert (done.status, done.attempt) == ("succeeded", 1)
    assert ledger.retry("no-such-job") is None


def test_hand_back_returns_the_job_without_counting_the_attempt(ledger: Ledger) -> None:
    job = submit(ledger)
    c = claim(ledger)

    assert ledger.hand_back(c) is True

    back = get(ledger, job.id)
    assert (back.status, back.attempt) == ("queued", 0)
    assert back.lease_owner is None
    assert ledger.hand_back(c) is False  # only once
    assert claim(ledger).attempt == 1


def test_purge_removes_old_finished_jobs_only(ledger: Ledger) -> None:
    now = time.time()
    old = now - 10 * 86400
    states = {
        "old_succeeded": ("succeeded", old),
        "old_failed": ("failed", old),
        "old_dead": ("dead", old),
        "old_cancelled": ("cancelled", old),
        "recent_succeeded": ("succeeded", now - 60),
        "old_queued": ("queued", old),  # finished once, since retried
        "old_running": ("running", None),
    }
    ids: dict[str, str] = {}
    for name, (status, finished_at) in states.items():
        ids[name] = submit(ledger).id
        update(ledger, ids[name], status=status, finished_at=finished_at, created_at=old)
    with transaction(ledger.engine) as tx:
        for name in ("old_succeeded", "old_failed"):
            tx.staged_files.record(job_id=ids[name], path=name, size=1, sha256="0" * 64)
    staged_files_ = StagedFiles(ledger.engine)
    staged_files_.mark_removed(
        [staged_id for staged_id, path in staged_files_.to_remove(0) if path == "old_succeeded"]
    )

    assert ledger.purge_finished(now - 7 * 86400) == 4

    left = {j.id: j.status for j in ledger.list_jobs(limit=10)}
    assert left == {ids[n]: states[n][0] for n in ("recent_succeeded", "old_queued", "old_running")}
    with write_transaction(ledger.engine) as conn:
        staged = set(conn.execute(sa.select(staged_files.c.path)).scalars())
    # A removed file's record goes with its job; one still on disk stays for cleanup.
    assert staged == {"old_failed"}
    assert ledger.purge_finished(now - 7 * 86400) == 0


def test_cleanup_keeps_the_bytes_of_jobs_that_can_still_be_retried(ledger: Ledger) -> None:
    """A succeeded job's staged file can go at once; a failed, dead or cancelled job
    may be retried (`ingest jobs retry`), so its file stays for the upload retention."""
    now = time.time()
    retention_start = now - 86400
    statuses = ("succeeded", "failed", "dead", "cancelled", "queued", "running")
    pending: list[tuple[str, str]] = []
    with transaction(ledger.engine) as tx:
        for status in statuses:
            job = tx.jobs.enqueue(NewJob(kind="ingest", payload={}))
            update_in_tx = (job.id, status)
            tx.staged_files.record(job_id=job.id, path=status, size=1, sha256="0" * 64)
            pending.append(update_in_tx)
        # A job purged from the ledger left its file behind.
        tx.staged_files.record(job_id="purged", path="orphan", size=1, sha256="0" * 64)
    for job_id, status in pending:
        update(ledger, job_id, status=status)

    staged = StagedFiles(ledger.engine)
    fresh = {path for _, path in staged.to_remove(retention_start)}
    assert fresh == {"succeeded"}

    with write_transaction(ledger.engine) as conn:
        conn.execute(sa.update(staged_files).values(created_at=now - 2 * 86400))
    expired = {path for _, path in staged.to_remove(retention_start)}
    assert expired == {"succeeded", "failed", "dead", "cancelled", "orphan"}


def test_unfinished_lists_only_the_jobs_still_moving_with_their_status(ledger: Ledger) -> None:
    queued, running, cancelled = (submit(ledger) for _ in range(3))
    update(ledger, running.id, status=JobStatus.RUNNING)
    ledger.cancel(cancelled.id)
    ids = [queued.id, running.id, cancelled.id, "no-such-job"]
    assert ledger.unfinished(ids) == {
        queued.id: JobStatus.QUEUED,
        running.id: JobStatus.RUNNING,
    }
    many = [submit(ledger).id for _ in range(501)]  # past one IN (...) batch
    assert set(ledger.unfinished(many)) == set(many)


def test_lists_filtered_by_several_statuses_page_newest_first(ledger: Ledger) -> None:
    statuses = ["succeeded", "failed", "dead", "queued"]
    made = []
    for i in range(12):
        job = submit(ledger, queue="ingest" if i % 3 else "maintenance")
        # Equal times on purpose: the id breaks the tie, as in one ORDER BY.
        update(ledger, job.id, status=statuses[i % 4], created_at=1000.0 + i // 2)
        made.append(job.id)
    everything = ledger.list_jobs(limit=50)
    wanted = [JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.QUEUED]
    expected = [j.id for j in everything if j.status in wanted]
    assert len(expected) == 9
    pages = [ledger.list_jobs(statuses=wanted, limit=4, offset=o) for o in (0, 4, 8)]
    assert [j.id for page in pages for j in page] == expected
    in_queue = ledger.list_jobs(statuses=wanted, queue="maintenance", limit=50)
    assert [j.id for j in in_queue] == [
        j.id for j in everything if j.status in wanted and j.queue == "maintenance"
    ]


def test_a_short_job_writes_its_progress_with_its_outcome(ledger: Ledger) -> None:
    """No progress row while a job is young (a small document is done in a few
    milliseconds); its last stage reaches the row with the outcome, in one commit."""
    from ingest.jobs.execution import JobExecution
    from ingest.jobs.progress import Progress

    job = submit(ledger)
    execution = JobExecution(claim(ledger), ledger, soft_timeout_s=60)
    before = get(ledger, job.id)
    execution.progress(Progress("parse", 1, 1, "parsed"))
    execution.progress(Progress("chunk", 10, 10, "1 chunk"))
    execution.progress(Progress("embed", 3, 4, "embedding"))
    assert get(ledger, job.id) == before  # not written yet
    with transaction(ledger.engine) as tx:
        execution.succeed_in(tx, {"chunks": 1})
    done = get(ledger, job.id)
    assert (done.status, done.progress) == ("succeeded", 1.0)
    assert (done.stage, done.progress_current, done.progress_total) == ("embed", 3, 4)
    assert [s["stage"] for s in done.stages] == ["parse", "chunk", "embed"]

    failing = submit(ledger)
    execution = JobExecution(claim(ledger), ledger, soft_timeout_s=60)
    execution.progress(Progress("chunk", 2, 10, "chunking"))
    with transaction(ledger.engine) as tx:
        execution.fail_in(tx, error_type="corrupt", message="bad", result={})
    failed = get(ledger, failing.id)
    assert (failed.status, failed.stage, failed.progress_current) == ("failed", "chunk", 2)
