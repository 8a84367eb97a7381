"""The job ledger's SQL: enqueue, claim with a lease, heartbeat, fenced outcomes, reaping.

A claim bumps `attempt`; every later write for that run names the attempt and
the lease owner, so a worker that lost its lease (killed, paused, partitioned)
can never overwrite what its successor did.

`Ledger` runs its own short transactions (claims, heartbeats, steering);
`JobWriter` is the ledger inside a caller's unit of work (store/transaction.py),
so a job's row commits together with what it needs or what it produced.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ingest.errors import LeaseLost
from ingest.store.documents import DocumentWriter
from ingest.store.engine import read_transaction, write_transaction
from ingest.store.job_records import Claim, Job, NewerJobs, NewJob, new_job_id, to_job
from ingest.store.job_statements import (
    INSERT_JOB,
    NEWER_JOBS,
    QUEUED_OF_DOCUMENT,
    end_attempt_values,
    fence,
    statements,
    succeed_params,
)
from ingest.store.prebuilt import run
from ingest.store.schema import jobs, staged_files
from ingest.vocabulary import RETRYABLE, TERMINAL, JobStatus


class JobWriter:
    """The ledger inside a caller's transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self._claim, self._succeed = statements(conn.dialect.name)
        self._documents = DocumentWriter(conn)

    def claim(
        self, owner: str, queues: Sequence[str], lease_seconds: float, limit: int
    ) -> list[Claim]:
        """Take up to `limit` runnable jobs, in claim order (job_statements.ClaimStatements)."""
        now = time.time()
        pick = {"queues": list(queues), "now": now, "limit": limit}
        take: dict[str, Any] = {"now": now, "owner": owner, "expires": now + lease_seconds}
        if self._claim.pick is None:
            take.update(pick)
        else:
            take["ids"] = [row.id for row in run(self._conn, self._claim.pick, pick)]
            if not take["ids"]:
                return []
        claimed = [Claim(to_job(row), owner) for row in run(self._conn, self._claim.take, take)]
        # RETURNING order is unspecified.
        return sorted(claimed, key=lambda c: (-c.job.priority, c.job.created_at, c.job.id))

    def enqueue(
        self, new: NewJob, *, job_id: str | None = None, document_is_new: bool = False
    ) -> Job:
        """Insert a queued job (it commits together with what it needs). An
        idempotency key already used returns that job. `document_is_new`: its
        document's row was created in this transaction, queued; this new job is its
        latest, so the status rule would change nothing (two statements a file)."""
        job = self._insert(new, job_id)
        if not (document_is_new and new.idempotency_key is None):
            self._follow(job.document_id, job.kind)
        return job

    def _follow(self, document_id: str | None, kind: str) -> None:
        """The job's document follows its latest job (documents.py, the one rule)."""
        if document_id is not None:
            self._documents.follow_latest_job(document_id, kind)

    def _insert(self, new: NewJob, job_id: str | None) -> Job:
        conn = self._conn
        if new.idempotency_key is not None:
            existing = self.by_idempotency_key(new.idempotency_key)
            if existing is not None:
                return existing
        now = time.time()
        the_id = job_id or new_job_id()
        row: dict[str, Any] = {
            "id": the_id,
            "kind": new.kind,
            "queue": new.queue,
            "priority": new.priority,
            "status": JobStatus.QUEUED,
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
            # The row as the database holds it, in the insert's own round trip.
            return to_job(run(conn, INSERT_JOB, row).one())
        # Two submitters racing on one key: exactly one insert wins.
        # The savepoint must see the error: PostgreSQL needs a rollback to it.
        try:
            with conn.begin_nested():
                conn.execute(jobs.insert().values(row))
        except IntegrityError:
            pass
        existing = self.by_idempotency_key(new.idempotency_key)
        assert existing is not None
        return existing

    def by_idempotency_key(self, key: str) -> Job | None:
        row = self._conn.execute(sa.select(jobs).where(jobs.c.idempotency_key == key)).first()
        return to_job(row) if row else None

    def queued_twin(self, *, document_id: str, kind: str, payload: Mapping[str, Any]) -> Job | None:
        """A job of this document still waiting in the queue with this very payload
        (the same file, collection and metadata), if any."""
        rows = run(self._conn, QUEUED_OF_DOCUMENT, {"doc_id": document_id, "kind": kind})
        return next((job for job in map(to_job, rows) if job.payload == payload), None)

    def newer_jobs(self, job: Job) -> NewerJobs:
        """The jobs submitted after `job` for the same document (and kind). Run
        inside the transaction that writes the document, after its row is written:
        on PostgreSQL that row lock orders two concurrent writers, and SQLite runs
        one write transaction at a time."""
        if job.document_id is None:
            return NewerJobs()
        params = {"doc_id": job.document_id, "kind": job.kind, "created": job.created_at}
        rows = run(self._conn, NEWER_JOBS, {**params, "job_id": job.id}).all()
        return NewerJobs(tuple((str(row.id), JobStatus(row.status)) for row in rows))

    def succeed(
        self,
        claim: Claim,
        result: Mapping[str, Any],
        stages: list[dict[str, Any]],
        *,
        document_id: str | None = None,
        document_settled: bool = False,
    ) -> None:
        """Mark success; raises LeaseLost (rolling the whole transaction back) when
        this attempt no longer owns the job. `document_settled`: the caller wrote the
        document's row `ready` in this transaction and no newer job of it exists, so
        the status rule would rewrite the row as it is (two statements a document)."""
        now = time.time()
        params: dict[str, Any] = {
            **succeed_params(claim, stages),
            "result": dict(result),
            "stages": stages,
            "finished_at": now,
            "updated_at": now,
        }
        if document_id is not None:
            params["document_id"] = document_id
        updated = run(self._conn, self._succeed[document_id is not None], params)
        if not updated.rowcount:
            raise LeaseLost(claim.job.id)
        if not document_settled:
            self._follow(document_id or claim.job.document_id, claim.job.kind)

    def end_attempt(
        self,
        claim: Claim,
        status: JobStatus,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        error_traceback: str | None = None,
        retry_at: float | None = None,
        stages: list[dict[str, Any]] | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> bool:
        """End this attempt as failed / dead / cancelled, or back to queued (retry_at).
        False when the lease had been lost (nothing written)."""
        values = end_attempt_values(
            status,
            error_type=error_type,
            error_message=error_message,
            error_traceback=error_traceback,
            retry_at=retry_at,
            stages=stages,
            result=result,
        )
        stmt = sa.update(jobs).where(fence(claim)).values(**values)
        if not self._conn.execute(stmt).rowcount:
            return False
        if status != JobStatus.QUEUED:  # back in the queue, its document stays queued
            self._follow(claim.job.document_id, claim.job.kind)
        return True


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def submit(self, new: NewJob) -> Job:
        """Enqueue a job that needs nothing else in its transaction."""
        with write_transaction(self.engine) as conn:
            return JobWriter(conn).enqueue(new)

    # --- reading ----------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return to_job(row) if row else None

    def get_many(self, job_ids: Sequence[str]) -> list[Job]:
        found: dict[str, Job] = {}
        with read_transaction(self.engine) as conn:
            for start in range(0, len(job_ids), 500):
                batch = list(job_ids[start : start + 500])
                for row in conn.execute(sa.select(jobs).where(jobs.c.id.in_(batch))):
                    job = to_job(row)
                    found[job.id] = job
        return [found[j] for j in job_ids if j in found]

    def by_idempotency_keys(self, keys: Sequence[str]) -> list[Job]:
        """The jobs enqueued with these keys, in the keys' order (missing ones left out)."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(sa.select(jobs).where(jobs.c.idempotency_key.in_(list(keys))))
            by_key = {job.idempotency_key: job for job in map(to_job, rows)}
        return [by_key[k] for k in keys if k in by_key]

    def unfinished(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """The jobs among `job_ids` not yet terminal, with their status: two small
        columns of the rows still moving, for a caller that follows a run."""
        found: dict[str, JobStatus] = {}
        not_terminal = [s for s in JobStatus if s not in TERMINAL]
        with read_transaction(self.engine) as conn:
            for start in range(0, len(job_ids), 500):
                stmt = sa.select(jobs.c.id, jobs.c.status).where(
                    jobs.c.id.in_(list(job_ids[start : start + 500])),
                    jobs.c.status.in_(not_terminal),
                )
                found.update({row.id: JobStatus(row.status) for row in conn.execute(stmt)})
        return found

    def list_jobs(
        self,
        *,
        statuses: Sequence[JobStatus] | None = None,
        kind: str | None = None,
        kind_family: str | None = None,
        queue: str | None = None,
        document_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:
        """Newest first. `kind_family` matches that kind and the kinds under it:
        "maintenance" matches "maintenance.cleanup_staged"."""
        stmt = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id)
        if kind:
            stmt = stmt.where(jobs.c.kind == kind)
        if kind_family:
            family = kind_family.rstrip(".")
            stmt = stmt.where(
                sa.or_(
                    jobs.c.kind == family,
                    jobs.c.kind.startswith(f"{family}.", autoescape=True),
                )
            )
        if queue:
            stmt = stmt.where(jobs.c.queue == queue)
        if document_id:
            stmt = stmt.where(jobs.c.document_id == document_id)
        wanted = list(dict.fromkeys(statuses or []))
        with read_transaction(self.engine) as conn:
            if len(wanted) < 2:
                if wanted:
                    stmt = stmt.where(jobs.c.status == wanted[0])
                return [to_job(r) for r in conn.execute(stmt.limit(limit).offset(offset))]
            # An index range per status, merged: `IN (...)` would sort all their jobs.
            rows = [
                r
                for status in wanted
                for r in conn.execute(stmt.where(jobs.c.status == status).limit(limit + offset))
            ]
        rows.sort(key=lambda r: (-r.created_at, r.id))
        return [to_job(r) for r in rows[offset : offset + limit]]

    def counts(self) -> dict[str, dict[str, int]]:
        """{queue: {status: n}}"""
        stmt = sa.select(jobs.c.queue, jobs.c.status, sa.func.count()).group_by(
            jobs.c.queue, jobs.c.status
        )
        out: dict[str, dict[str, int]] = {}
        with read_transaction(self.engine) as conn:
            for queue, status, n in conn.execute(stmt):
                out.setdefault(queue, {})[status] = int(n)
        return out

    def metrics_snapshot(self, *, recent: int = 5000) -> dict[str, Any]:
        """Aggregates for /metrics: failures by reason, retries, recent durations."""
        with read_transaction(self.engine) as conn:
            failures = conn.execute(
                sa.select(jobs.c.kind, jobs.c.error_type, sa.func.count())
                .where(jobs.c.status.in_([JobStatus.FAILED, JobStatus.DEAD]))
                .group_by(jobs.c.kind, jobs.c.error_type)
            ).all()
            retries = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(jobs.c.attempt - 1), 0)).where(
                    jobs.c.attempt > 1
                )
            ).scalar_one()
            durations = conn.execute(
                sa.select(jobs.c.kind, jobs.c.finished_at - jobs.c.started_at)
                .where(jobs.c.status == JobStatus.SUCCEEDED, jobs.c.started_at.is_not(None))
                .order_by(jobs.c.finished_at.desc())
                .limit(recent)
            ).all()
        return {
            "failures": [(k, e or "unknown", int(n)) for k, e, n in failures],
            "retries": int(retries or 0),
            "durations": [(k, float(d)) for k, d in durations if d is not None],
        }

    def queued_count(self) -> int:
        with read_transaction(self.engine) as conn:
            n = conn.execute(
                sa.select(sa.func.count())
                .select_from(jobs)
                .where(jobs.c.status == JobStatus.QUEUED)
            ).scalar_one()
        return int(n)

    def latest_succeeded(self, kind: str) -> Job | None:
        stmt = (
            sa.select(jobs)
            .where(jobs.c.kind == kind, jobs.c.status == JobStatus.SUCCEEDED)
            .order_by(jobs.c.finished_at.desc())
            .limit(1)
        )
        with read_transaction(self.engine) as conn:
            row = conn.execute(stmt).first()
        return to_job(row) if row else None

    # --- claiming ---------------------------------------------------------------------

    def claim_many(
        self, owner: str, queues: Sequence[str], lease_seconds: float, limit: int
    ) -> list[Claim]:
        """Take up to `limit` runnable jobs in a transaction of their own."""
        with write_transaction(self.engine) as conn:
            return JobWriter(conn).claim(owner, queues, lease_seconds, limit)

    def heartbeat(self, claim: Claim, lease_seconds: float) -> bool:
        """Extend the lease; False if it was lost (reaped, finished elsewhere)."""
        return not self.renew_leases([claim], lease_seconds)

    def renew_leases(self, claims: Sequence[Claim], lease_seconds: float) -> list[Claim]:
        """Extend every lease in one write transaction (one wait for the SQLite write
        lock, however many jobs run); returns the claims whose lease was lost."""
        lost: list[Claim] = []
        with write_transaction(self.engine) as conn:
            # Read the clock once the write lock is held: time spent waiting for it
            # must not come off the lease.
            now = time.time()
            for claim in claims:
                result = conn.execute(
                    sa.update(jobs)
                    .where(fence(claim))
                    .values(lease_expires_at=now + lease_seconds, updated_at=now)
                )
                if not result.rowcount:
                    lost.append(claim)
        return lost

    def cancel_requested(self, job_id: str) -> bool:
        with read_transaction(self.engine) as conn:
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
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                sa.update(jobs)
                .where(fence(claim))
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

    # --- outcomes in a transaction of their own (all fenced) ----------------------------

    def end_attempt(
        self,
        claim: Claim,
        status: JobStatus,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        error_traceback: str | None = None,
        retry_at: float | None = None,
        stages: list[dict[str, Any]] | None = None,
    ) -> bool:
        """JobWriter.end_attempt in a transaction of its own."""
        with write_transaction(self.engine) as conn:
            if claim.job.document_id is not None and status != JobStatus.QUEUED:
                DocumentWriter(conn).lock([claim.job.document_id])
            return JobWriter(conn).end_attempt(
                claim,
                status,
                error_type=error_type,
                error_message=error_message,
                error_traceback=error_traceback,
                retry_at=retry_at,
                stages=stages,
            )

    def hand_back(self, claim: Claim) -> bool:
        """Graceful shutdown: return the job unharmed; this attempt does not count."""
        now = time.time()
        with write_transaction(self.engine) as conn:
            updated = conn.execute(
                sa.update(jobs)
                .where(fence(claim))
                .values(
                    status=JobStatus.QUEUED,
                    attempt=jobs.c.attempt - 1,
                    lease_owner=None,
                    lease_expires_at=None,
                    not_before=now,
                    progress_message="handed back by a stopping worker",
                    updated_at=now,
                )
            )
        return bool(updated.rowcount)

    def reap_expired(self, *, spare: Sequence[Claim] = ()) -> list[str]:
        """Jobs whose lease ran out (their worker died): back to queued, or dead after
        the last attempt. Returns the ids of the jobs reaped.

        `spare`: attempts the caller is itself running. A worker knows those are
        alive, however late their renewal, so its own reaper never takes them."""
        now = time.time()
        expired = sa.and_(jobs.c.status == JobStatus.RUNNING, jobs.c.lease_expires_at < now)
        if spare:
            expired = sa.and_(expired, sa.not_(sa.or_(*(fence(claim) for claim in spare))))
        ends = sa.or_(jobs.c.cancel_requested, jobs.c.attempt >= jobs.c.max_attempts)
        with write_transaction(self.engine) as conn:
            document_writer = DocumentWriter(conn)
            if conn.dialect.name == "postgresql":
                expired_documents = sa.select(jobs.c.document_id).where(
                    expired, jobs.c.document_id.is_not(None)
                )
                document_writer.lock(r.document_id for r in conn.execute(expired_documents))
            rows = conn.execute(
                sa.update(jobs)
                .where(expired)
                .values(
                    status=sa.case(
                        (jobs.c.cancel_requested, JobStatus.CANCELLED.value),
                        (jobs.c.attempt >= jobs.c.max_attempts, JobStatus.DEAD.value),
                        else_=JobStatus.QUEUED.value,
                    ),
                    error_type="lease_expired",
                    error_message=sa.literal(
                        "the worker running this job stopped responding (lease expired)"
                    ),
                    lease_owner=None,
                    lease_expires_at=None,
                    not_before=now,
                    finished_at=sa.case((ends, now), else_=None),
                    updated_at=now,
                )
                .returning(jobs.c.id, jobs.c.kind, jobs.c.document_id, jobs.c.status)
            ).all()
            for row in rows:
                if row.document_id is not None and row.status != JobStatus.QUEUED:
                    document_writer.follow_latest_job(row.document_id, row.kind)
        return [r.id for r in rows]

    # --- steering ---------------------------------------------------------------------

    def cancel(self, job_id: str) -> Job | None:
        """Queued: cancelled at once. Running: flagged; it stops at its next checkpoint."""
        now = time.time()
        with write_transaction(self.engine) as conn:
            document_writer = self._lock_document_of(conn, job_id)
            cancelled = conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == JobStatus.QUEUED)
                .values(
                    status=JobStatus.CANCELLED,
                    cancel_requested=True,
                    finished_at=now,
                    updated_at=now,
                    progress_message="cancelled before it started",
                )
            ).rowcount
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == JobStatus.RUNNING)
                .values(cancel_requested=True, updated_at=now)
            )
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
            if cancelled and row is not None and row.document_id is not None:
                document_writer.follow_latest_job(row.document_id, row.kind)
        return to_job(row) if row else None

    @staticmethod
    def _lock_document_of(conn: sa.Connection, job_id: str) -> DocumentWriter:
        """Before a steering write to a job: its document's row lock first (the order
        every writer follows; see DocumentWriter.lock)."""
        document_writer = DocumentWriter(conn)
        document_id = conn.execute(
            sa.select(jobs.c.document_id).where(jobs.c.id == job_id)
        ).scalar_one_or_none()
        if document_id is not None:
            document_writer.lock([document_id])
        return document_writer

    def retry(self, job_id: str, *, max_attempts: int | None = None) -> Job | None:
        """Re-queue a finished (failed, dead, cancelled) job for a fresh set of attempts."""
        now = time.time()
        values: dict[str, Any] = {
            "status": JobStatus.QUEUED,
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
        with write_transaction(self.engine) as conn:
            document_writer = self._lock_document_of(conn, job_id)
            requeued = conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status.in_(list(RETRYABLE)))
                .values(**values)
            ).rowcount
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
            if requeued and row is not None and row.document_id is not None:
                document_writer.follow_latest_job(row.document_id, row.kind)
        return to_job(row) if row else None

    def purge_finished(self, older_than: float) -> int:
        stmt_ids = sa.select(jobs.c.id).where(
            jobs.c.status.in_(list(TERMINAL)), jobs.c.finished_at < older_than
        )
        with write_transaction(self.engine) as conn:
            conn.execute(
                staged_files.delete().where(
                    staged_files.c.job_id.in_(stmt_ids), staged_files.c.removed_at.is_not(None)
                )
            )
            result = conn.execute(jobs.delete().where(jobs.c.id.in_(stmt_ids)))
        return int(result.rowcount or 0)
