"""The job ledger's SQL: enqueue, claim with a lease, heartbeat, fenced outcomes, reaping.

A claim bumps `attempt`; every later write for that run names the attempt and
the lease owner, so a worker that lost its lease (killed, paused, partitioned)
can never overwrite what its successor did.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ingest.store.engine import write_transaction
from ingest.store.schema import jobs, staged_files, workers

TERMINAL = ("succeeded", "failed", "cancelled", "dead")
ACTIVE = ("queued", "running")


class LeaseLost(Exception):
    """This worker no longer owns the job's current attempt; nothing it writes may land."""


@dataclass(frozen=True, slots=True)
class NewJob:
    kind: str
    payload: dict[str, Any]
    queue: str = "ingest"
    priority: int = 0
    max_attempts: int = 3
    idempotency_key: str | None = None
    document_id: str | None = None
    not_before: float | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    queue: str
    priority: int
    status: str
    attempt: int
    max_attempts: int
    not_before: float
    lease_owner: str | None
    lease_expires_at: float | None
    progress: float
    progress_current: int
    progress_total: int
    progress_message: str | None
    stage: str | None
    stages: list[dict[str, Any]]
    payload: dict[str, Any]
    result: dict[str, Any] | None
    error_type: str | None
    error_message: str | None
    error_traceback: str | None
    cancel_requested: bool
    idempotency_key: str | None
    document_id: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class Claim:
    """What a worker holds while it runs one attempt of a job."""

    job: Job
    owner: str

    @property
    def attempt(self) -> int:
        return self.job.attempt


def new_job_id() -> str:
    return uuid.uuid4().hex


def _to_job(row: sa.Row[Any]) -> Job:
    m = row._mapping
    return Job(**{f: m[f] for f in Job.__dataclass_fields__})


def _param(column: sa.Column[Any], name: str | None = None) -> sa.BindParameter[Any]:
    return sa.bindparam(name or column.name, type_=column.type)


def _claim_statement(dialect: str) -> sa.Update:
    """Built once: on the hot path, building and keying the statement cost SQLAlchemy
    more than SQLite spends running it (~0.8 of 1.2 ms a claim)."""
    now = _param(jobs.c.started_at, "now")
    pick = (
        sa.select(jobs.c.id)
        .where(
            jobs.c.status == "queued",
            jobs.c.queue.in_(sa.bindparam("queues", expanding=True)),
            jobs.c.not_before <= now,
        )
        .order_by(jobs.c.priority.desc(), jobs.c.created_at, jobs.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )
    if dialect == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    return (
        sa.update(jobs)
        .where(jobs.c.id.in_(pick))
        .values(
            status="running",
            attempt=jobs.c.attempt + 1,
            lease_owner=_param(jobs.c.lease_owner, "owner"),
            lease_expires_at=_param(jobs.c.lease_expires_at, "expires"),
            started_at=now,
            finished_at=None,
            progress=0.0,
            progress_current=0,
            progress_total=0,
            progress_message="started",
            stage=None,
            updated_at=now,
        )
        .returning(*jobs.c)
    )


# Every write of an attempt's outcome or progress is fenced: it applies only while
# this very attempt, by this owner, still holds the job.
def _fence_clause(job_id: Any, attempt: Any, owner: Any) -> sa.ColumnElement[bool]:
    return sa.and_(
        jobs.c.id == job_id,
        jobs.c.attempt == attempt,
        jobs.c.lease_owner == owner,
        jobs.c.status == "running",
    )


# The fence of the prebuilt statements, its values given at execution (_fence_values).
_FENCE = _fence_clause(
    _param(jobs.c.id, "job_id"),
    _param(jobs.c.attempt, "fence_attempt"),
    _param(jobs.c.lease_owner, "fence_owner"),
)


def _fence_values(claim: Claim) -> dict[str, Any]:
    return {"job_id": claim.job.id, "fence_attempt": claim.attempt, "fence_owner": claim.owner}


def _succeed_statement(with_document: bool) -> sa.Update:
    columns = [
        jobs.c.result,
        jobs.c.stages,
        jobs.c.finished_at,
        jobs.c.updated_at,
        *([jobs.c.document_id] if with_document else []),
    ]
    return (
        sa.update(jobs)
        .where(_FENCE)
        .values(
            status="succeeded",
            progress=1.0,
            progress_message="done",
            lease_owner=None,
            lease_expires_at=None,
            error_type=None,
            error_message=None,
            error_traceback=None,
            **{c.key: _param(c) for c in columns},
        )
    )


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._claim = _claim_statement(engine.dialect.name)
        self._succeed = {flag: _succeed_statement(flag) for flag in (False, True)}

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        with write_transaction(self.engine) as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # --- enqueue ----------------------------------------------------------------------

    def enqueue(self, conn: sa.Connection, new: NewJob, *, job_id: str | None = None) -> Job:
        """Insert a queued job inside the caller's transaction (so it commits together
        with what it needs). An idempotency key already used returns that job."""
        if new.idempotency_key is not None:
            existing = self._by_key(conn, new.idempotency_key)
            if existing is not None:
                return existing
        now = time.time()
        the_id = job_id or new_job_id()
        row: dict[str, Any] = {
            "id": the_id,
            "kind": new.kind,
            "queue": new.queue,
            "priority": new.priority,
            "status": "queued",
            "attempt": 0,
            "max_attempts": new.max_attempts,
            "not_before": new.not_before or now,
            "progress": 0.0,
            "progress_current": 0,
            "progress_total": 0,
            "stages": [],
            "payload": new.payload,
            "cancel_requested": False,
            "idempotency_key": new.idempotency_key,
            "document_id": new.document_id,
            "created_at": now,
            "updated_at": now,
        }
        if new.idempotency_key is None:
            conn.execute(jobs.insert().values(row))
        else:
            # Two submitters racing on one key: exactly one insert wins.
            # The savepoint must see the error: PostgreSQL needs a rollback to it.
            try:
                with conn.begin_nested():
                    conn.execute(jobs.insert().values(row))
            except IntegrityError:
                pass
            existing = self._by_key(conn, new.idempotency_key)
            assert existing is not None
            return existing
        return self._get(conn, the_id)

    def submit(self, new: NewJob) -> Job:
        with self.write() as conn:
            return self.enqueue(conn, new)

    def _by_key(self, conn: sa.Connection, key: str) -> Job | None:
        row = conn.execute(sa.select(jobs).where(jobs.c.idempotency_key == key)).first()
        return _to_job(row) if row else None

    def _get(self, conn: sa.Connection, job_id: str) -> Job:
        return _to_job(conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one())

    # --- reading ----------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self._read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return _to_job(row) if row else None

    def get_many(self, job_ids: Sequence[str]) -> list[Job]:
        found: dict[str, Job] = {}
        with self._read() as conn:
            for start in range(0, len(job_ids), 500):
                batch = list(job_ids[start : start + 500])
                for row in conn.execute(sa.select(jobs).where(jobs.c.id.in_(batch))):
                    job = _to_job(row)
                    found[job.id] = job
        return [found[j] for j in job_ids if j in found]

    def by_idempotency_keys(self, keys: Sequence[str]) -> list[Job]:
        """The jobs enqueued with these keys, in the keys' order (missing ones left out)."""
        with self._read() as conn:
            rows = conn.execute(sa.select(jobs).where(jobs.c.idempotency_key.in_(list(keys))))
            by_key = {job.idempotency_key: job for job in map(_to_job, rows)}
        return [by_key[k] for k in keys if k in by_key]

    def list_jobs(
        self,
        *,
        statuses: Sequence[str] | None = None,
        kind: str | None = None,
        queue: str | None = None,
        document_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:
        stmt = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit)
        if statuses:
            stmt = stmt.where(jobs.c.status.in_(list(statuses)))
        if kind:
            stmt = stmt.where(jobs.c.kind == kind)
        if queue:
            stmt = stmt.where(jobs.c.queue == queue)
        if document_id:
            stmt = stmt.where(jobs.c.document_id == document_id)
        with self._read() as conn:
            return [_to_job(r) for r in conn.execute(stmt.offset(offset))]

    def counts(self) -> dict[str, dict[str, int]]:
        """{queue: {status: n}}"""
        stmt = sa.select(jobs.c.queue, jobs.c.status, sa.func.count()).group_by(
            jobs.c.queue, jobs.c.status
        )
        out: dict[str, dict[str, int]] = {}
        with self._read() as conn:
            for queue, status, n in conn.execute(stmt):
                out.setdefault(queue, {})[status] = int(n)
        return out

    def metrics_snapshot(self, *, recent: int = 5000) -> dict[str, Any]:
        """Aggregates for /metrics: failures by reason, retries, recent durations."""
        with self._read() as conn:
            failures = conn.execute(
                sa.select(jobs.c.kind, jobs.c.error_type, sa.func.count())
                .where(jobs.c.status.in_(["failed", "dead"]))
                .group_by(jobs.c.kind, jobs.c.error_type)
            ).all()
            retries = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(jobs.c.attempt - 1), 0)).where(
                    jobs.c.attempt > 1
                )
            ).scalar_one()
            durations = conn.execute(
                sa.select(jobs.c.kind, jobs.c.finished_at - jobs.c.started_at)
                .where(jobs.c.status == "succeeded", jobs.c.started_at.is_not(None))
                .order_by(jobs.c.finished_at.desc())
                .limit(recent)
            ).all()
        return {
            "failures": [(k, e or "unknown", int(n)) for k, e, n in failures],
            "retries": int(retries or 0),
            "durations": [(k, float(d)) for k, d in durations if d is not None],
        }

    def queued_count(self) -> int:
        with self._read() as conn:
            n = conn.execute(
                sa.select(sa.func.count()).select_from(jobs).where(jobs.c.status == "queued")
            ).scalar_one()
        return int(n)

    def latest_succeeded(self, kind: str) -> Job | None:
        stmt = (
            sa.select(jobs)
            .where(jobs.c.kind == kind, jobs.c.status == "succeeded")
            .order_by(jobs.c.finished_at.desc())
            .limit(1)
        )
        with self._read() as conn:
            row = conn.execute(stmt).first()
        return _to_job(row) if row else None

    # --- claiming ---------------------------------------------------------------------

    def claim(self, owner: str, queues: Sequence[str], lease_seconds: float) -> Claim | None:
        """Take the next runnable job of these queues: highest priority, then oldest."""
        claims = self.claim_many(owner, queues, lease_seconds, 1)
        return claims[0] if claims else None

    def claim_many(
        self, owner: str, queues: Sequence[str], lease_seconds: float, limit: int
    ) -> list[Claim]:
        """Take up to `limit` runnable jobs in one statement (one round trip, one lock):
        SQLite runs it as a single atomic UPDATE ... RETURNING; PostgreSQL picks the
        rows with FOR UPDATE SKIP LOCKED so concurrent workers never wait on each other."""
        now = time.time()
        params = {
            "queues": list(queues),
            "now": now,
            "limit": limit,
            "owner": owner,
            "expires": now + lease_seconds,
        }
        with self.write() as conn:
            rows = conn.execute(self._claim, params).all()
        claimed = [Claim(_to_job(row), owner) for row in rows]
        # RETURNING order is unspecified: run them in claim order.
        return sorted(claimed, key=lambda c: (-c.job.priority, c.job.created_at, c.job.id))

    def _fence(self, claim: Claim) -> sa.ColumnElement[bool]:
        return _fence_clause(claim.job.id, claim.attempt, claim.owner)

    def heartbeat(self, claim: Claim, lease_seconds: float) -> bool:
        """Extend the lease; False if it was lost (reaped, finished elsewhere)."""
        now = time.time()
        with self.write() as conn:
            result = conn.execute(
                sa.update(jobs)
                .where(self._fence(claim))
                .values(lease_expires_at=now + lease_seconds, updated_at=now)
            )
        return bool(result.rowcount)

    def cancel_requested(self, job_id: str) -> bool:
        with self._read() as conn:
            flag = conn.execute(
                sa.select(jobs.c.cancel_requested).where(jobs.c.id == job_id)
            ).scalar_one_or_none()
        return bool(flag)

    def report_progress(
        self,
        claim: Claim,
        *,
        stage: str,
        current: int,
        total: int,
        fraction: float,
        message: str,
        stages: list[dict[str, Any]],
    ) -> None:
        now = time.time()
        with self.write() as conn:
            result = conn.execute(
                sa.update(jobs)
                .where(self._fence(claim))
                .values(
                    stage=stage,
                    progress_current=current,
                    progress_total=total,
                    progress=fraction,
                    progress_message=message,
                    stages=stages,
                    updated_at=now,
                )
            )
        if not result.rowcount:
            raise LeaseLost(claim.job.id)

    # --- outcomes (all fenced) --------------------------------------------------------------

    def succeed(
        self,
        conn: sa.Connection,
        claim: Claim,
        result: Mapping[str, Any],
        stages: list[dict[str, Any]],
        *,
        document_id: str | None = None,
    ) -> None:
        """Mark success inside the caller's transaction; raises LeaseLost (rolling the
        whole transaction back) when this attempt no longer owns the job."""
        now = time.time()
        params: dict[str, Any] = {
            **_fence_values(claim),
            "result": dict(result),
            "stages": stages,
            "finished_at": now,
            "updated_at": now,
        }
        if document_id is not None:
            params["document_id"] = document_id
        updated = conn.execute(self._succeed[document_id is not None], params)
        if not updated.rowcount:
            raise LeaseLost(claim.job.id)

    def queued_twin(
        self, conn: sa.Connection, *, document_id: str, kind: str, payload: Mapping[str, Any]
    ) -> Job | None:
        """A job of this document still waiting in the queue with this very payload
        (the same file, collection and metadata), if any."""
        rows = conn.execute(
            sa.select(jobs)
            .where(
                jobs.c.document_id == document_id,
                jobs.c.kind == kind,
                jobs.c.status == "queued",
            )
            .order_by(jobs.c.created_at.desc())
        )
        return next((job for job in map(_to_job, rows) if job.payload == payload), None)

    def newer_outcome(self, conn: sa.Connection, job: Job) -> str | None:
        """The id of a job submitted after `job` for the same document that has
        already written its outcome (succeeded, failed or dead), if any. Run inside
        the transaction that writes the document, after its row is written: on
        PostgreSQL that row lock orders two concurrent writers, and SQLite runs one
        write transaction at a time."""
        if job.document_id is None:
            return None
        later = sa.or_(
            jobs.c.created_at > job.created_at,
            sa.and_(jobs.c.created_at == job.created_at, jobs.c.id > job.id),
        )
        stmt = (
            sa.select(jobs.c.id)
            .where(
                jobs.c.document_id == job.document_id,
                jobs.c.kind == job.kind,
                jobs.c.status.in_(["succeeded", "failed", "dead"]),
                later,
            )
            .limit(1)
        )
        newer = conn.execute(stmt).scalar_one_or_none()
        return None if newer is None else str(newer)

    def finish(
        self,
        claim: Claim,
        *,
        status: str,
        error_type: str | None = None,
        error_message: str | None = None,
        error_traceback: str | None = None,
        retry_at: float | None = None,
        stages: list[dict[str, Any]] | None = None,
        result: Mapping[str, Any] | None = None,
        conn: sa.Connection | None = None,
    ) -> bool:
        """End this attempt as failed / dead / cancelled, or back to queued (retry_at).
        Returns False when the lease had been lost (nothing written). With `conn`,
        writes inside the caller's transaction."""
        now = time.time()
        values: dict[str, Any] = {
            "status": status,
            "error_type": error_type,
            "error_message": error_message,
            "error_traceback": error_traceback,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        }
        if result is not None:
            values["result"] = dict(result)
        if stages is not None:
            values["stages"] = stages
        if status == "queued":
            values["not_before"] = retry_at or now
        else:
            values["finished_at"] = now
        stmt = sa.update(jobs).where(self._fence(claim)).values(**values)
        if conn is not None:
            return bool(conn.execute(stmt).rowcount)
        with self.write() as own:
            return bool(own.execute(stmt).rowcount)

    def hand_back(self, claim: Claim) -> bool:
        """Graceful shutdown: return the job unharmed; this attempt does not count."""
        now = time.time()
        with self.write() as conn:
            updated = conn.execute(
                sa.update(jobs)
                .where(self._fence(claim))
                .values(
                    status="queued",
                    attempt=jobs.c.attempt - 1,
                    lease_owner=None,
                    lease_expires_at=None,
                    not_before=now,
                    progress_message="handed back by a stopping worker",
                    updated_at=now,
                )
            )
        return bool(updated.rowcount)

    def reap_expired(self) -> list[str]:
        """Jobs whose lease ran out (their worker died): back to queued, or dead after
        the last attempt. Returns the ids of the jobs reaped."""
        now = time.time()
        expired = sa.and_(jobs.c.status == "running", jobs.c.lease_expires_at < now)
        with self.write() as conn:
            rows = conn.execute(
                sa.update(jobs)
                .where(expired)
                .values(
                    status=sa.case(
                        (jobs.c.cancel_requested, "cancelled"),
                        (jobs.c.attempt >= jobs.c.max_attempts, "dead"),
                        else_="queued",
                    ),
                    error_type="lease_expired",
                    error_message=sa.literal(
                        "the worker running this job stopped responding (lease expired)"
                    ),
                    lease_owner=None,
                    lease_expires_at=None,
                    not_before=now,
                    finished_at=sa.case(
                        (
                            sa.or_(jobs.c.cancel_requested, jobs.c.attempt >= jobs.c.max_attempts),
                            now,
                        ),
                        else_=None,
                    ),
                    updated_at=now,
                )
                .returning(jobs.c.id)
            ).all()
        return [r.id for r in rows]

    # --- steering ---------------------------------------------------------------------

    def cancel(self, job_id: str) -> Job | None:
        """Queued: cancelled at once. Running: flagged; it stops at its next checkpoint."""
        now = time.time()
        with self.write() as conn:
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "queued")
                .values(
                    status="cancelled",
                    cancel_requested=True,
                    finished_at=now,
                    updated_at=now,
                    progress_message="cancelled before it started",
                )
            )
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "running")
                .values(cancel_requested=True, updated_at=now)
            )
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return _to_job(row) if row else None

    def retry(self, job_id: str, *, max_attempts: int | None = None) -> Job | None:
        """Re-queue a finished (failed, dead, cancelled) job for a fresh set of attempts."""
        now = time.time()
        values: dict[str, Any] = {
            "status": "queued",
            "attempt": 0,
            "cancel_requested": False,
            "not_before": now,
            "finished_at": None,
            "progress": 0.0,
            "progress_current": 0,
            "progress_total": 0,
            "progress_message": "re-queued",
            "updated_at": now,
        }
        if max_attempts is not None:
            values["max_attempts"] = max_attempts
        with self.write() as conn:
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status.in_(["failed", "dead", "cancelled"]))
                .values(**values)
            )
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return _to_job(row) if row else None

    # --- staged files -----------------------------------------------------------------

    def record_staged_file(
        self, conn: sa.Connection, *, job_id: str, path: str, size: int, sha256: str
    ) -> None:
        conn.execute(
            staged_files.insert().values(
                job_id=job_id, path=path, size_bytes=size, sha256=sha256, created_at=time.time()
            )
        )

    def staged_files_to_remove(self, older_than: float) -> list[tuple[int, str]]:
        """Staged files whose job succeeded, or that are older than the upload retention
        while their job is gone or can only be retried by hand (failed, dead, cancelled:
        `retry` re-runs the job on these very bytes, so they must outlive its failure)."""
        succeeded = sa.select(jobs.c.id).where(jobs.c.status == "succeeded")
        active = sa.select(jobs.c.id).where(jobs.c.status.in_(list(ACTIVE)))
        stmt = sa.select(staged_files.c.id, staged_files.c.path).where(
            staged_files.c.removed_at.is_(None),
            sa.or_(
                staged_files.c.job_id.in_(succeeded),
                sa.and_(
                    staged_files.c.created_at < older_than,
                    staged_files.c.job_id.not_in(active),
                ),
            ),
        )
        with self._read() as conn:
            return [(r.id, r.path) for r in conn.execute(stmt)]

    def mark_staged_removed(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self.write() as conn:
            conn.execute(
                sa.update(staged_files)
                .where(staged_files.c.id.in_(list(ids)))
                .values(removed_at=time.time())
            )

    def live_staged_files(self) -> list[tuple[str, str]]:
        """(job id, path) of staged files that active jobs still need."""
        stmt = (
            sa.select(staged_files.c.job_id, staged_files.c.path)
            .join(jobs, jobs.c.id == staged_files.c.job_id)
            .where(staged_files.c.removed_at.is_(None), jobs.c.status.in_(list(ACTIVE)))
        )
        with self._read() as conn:
            return [(r.job_id, r.path) for r in conn.execute(stmt)]

    def purge_finished(self, older_than: float) -> int:
        stmt_ids = sa.select(jobs.c.id).where(
            jobs.c.status.in_(list(TERMINAL)), jobs.c.finished_at < older_than
        )
        with self.write() as conn:
            conn.execute(
                staged_files.delete().where(
                    staged_files.c.job_id.in_(stmt_ids), staged_files.c.removed_at.is_not(None)
                )
            )
            result = conn.execute(jobs.delete().where(jobs.c.id.in_(stmt_ids)))
        return int(result.rowcount or 0)

    # --- worker registry --------------------------------------------------------------

    def register_worker(
        self, worker_id: str, *, hostname: str, pid: int, queues: Sequence[str], concurrency: int
    ) -> None:
        now = time.time()
        with self.write() as conn:
            conn.execute(workers.delete().where(workers.c.id == worker_id))
            conn.execute(
                workers.insert().values(
                    id=worker_id,
                    hostname=hostname,
                    pid=pid,
                    queues=",".join(queues),
                    concurrency=concurrency,
                    running=0,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    def worker_heartbeat(self, worker_id: str, running: int) -> None:
        with self.write() as conn:
            conn.execute(
                sa.update(workers)
                .where(workers.c.id == worker_id)
                .values(heartbeat_at=time.time(), running=running)
            )

    def worker_stopped(self, worker_id: str) -> None:
        with self.write() as conn:
            conn.execute(
                sa.update(workers).where(workers.c.id == worker_id).values(stopped_at=time.time())
            )

    def list_workers(self, *, stale_after: float) -> list[dict[str, Any]]:
        """Registered workers, newest first, each marked live or not."""
        now = time.time()
        with self._read() as conn:
            rows = conn.execute(sa.select(workers).order_by(workers.c.started_at.desc())).all()
        return [
            {
                "id": r.id,
                "hostname": r.hostname,
                "pid": r.pid,
                "queues": r.queues.split(","),
                "concurrency": r.concurrency,
                "running": r.running,
                "started_at": r.started_at,
                "heartbeat_age_s": round(now - r.heartbeat_at, 1),
                "live": r.stopped_at is None and now - r.heartbeat_at < stale_after,
            }
            for r in rows
        ]

    def prune_workers(self, older_than: float) -> int:
        with self.write() as conn:
            result = conn.execute(workers.delete().where(workers.c.heartbeat_at < older_than))
        return int(result.rowcount or 0)
