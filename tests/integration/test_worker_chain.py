"""A worker claims its next job in the transaction that records the last one's
success: one write transaction a job, not two. On both backends (on PostgreSQL the
claim's FOR UPDATE SKIP LOCKED then runs inside the job's own transaction)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from ingest.context import Context
from ingest.store import NewJob
from ingest.vocabulary import JobStatus
from tests.support.processes import wait_until

JOBS = 20
CLAIM = "attempt=(jobs.attempt + "  # the claim statement's SET, and no other's


class Transactions:
    """The statements of every transaction on an engine, as they end."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._open: dict[sa.Connection, list[str]] = {}
        self.ended: list[list[str]] = []
        self._lock = threading.Lock()
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "before_cursor_execute", self._execute)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)

    def remove(self) -> None:
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine, "before_cursor_execute", self._execute)
        event.remove(self.engine, "commit", self._end)
        event.remove(self.engine, "rollback", self._end)

    def _begin(self, conn: sa.Connection) -> None:
        with self._lock:
            self._open[conn] = []

    def _execute(self, conn: sa.Connection, _cursor: object, statement: str, *_: object) -> None:
        with self._lock:
            if conn in self._open:
                self._open[conn].append(" ".join(statement.split()))

    def _end(self, conn: sa.Connection) -> None:
        with self._lock:
            statements = self._open.pop(conn, None)
            if statements is not None:
                self.ended.append(statements)

    def claims_alone(self) -> int:
        """Transactions that claimed and did nothing else (BEGIN aside)."""
        with self._lock:
            return sum(
                1
                for statements in self.ended
                if any(CLAIM in s for s in statements)
                and all(CLAIM in s or s.startswith("BEGIN") for s in statements)
            )


@pytest.fixture
def transactions(ctx: Context) -> Iterator[Transactions]:
    recorder = Transactions(ctx.store.engine)
    yield recorder
    recorder.remove()


def test_each_job_after_the_first_is_claimed_as_the_last_one_succeeds(
    ctx: Context, transactions: Transactions
) -> None:
    jobs = [ctx.ledger.submit(NewJob(kind="noop", payload={})) for _ in range(JOBS)]
    worker = ctx.worker(queues=["ingest"], concurrency=1, burst=True)

    worker.run()

    assert [ctx.ledger.get(job.id).status for job in jobs] == [JobStatus.SUCCEEDED] * JOBS  # type: ignore[union-attr]
    # The first claim, and the empty look the burst worker takes before it exits.
    assert transactions.claims_alone() <= 3


def test_a_stopped_worker_leaves_no_job_claimed_behind(ctx: Context) -> None:
    jobs = [ctx.ledger.submit(NewJob(kind="noop", payload={})) for _ in range(JOBS)]
    worker = ctx.worker(queues=["ingest"], concurrency=1)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    wait_until(lambda: worker.jobs_run >= 3, 60, message="the worker's first jobs")

    worker.stop()
    thread.join(timeout=60)

    assert not thread.is_alive()
    statuses = [ctx.ledger.get(job.id).status for job in jobs]  # type: ignore[union-attr]
    assert JobStatus.RUNNING not in statuses
    assert statuses.count(JobStatus.SUCCEEDED) >= 3
    assert set(statuses) <= {JobStatus.SUCCEEDED, JobStatus.QUEUED}
