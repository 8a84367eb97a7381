"""What a running job can see and do: report progress, hit checkpoints, commit
its outcome fenced by its attempt."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ingest.errors import JobCancelled, JobLeaseLost, JobTimedOut, LeaseLost, WorkerStopping
from ingest.jobs.progress import Progress, overall_fraction
from ingest.store import Claim, Transaction
from ingest.store.ledger import Ledger
from ingest.vocabulary import JobStatus

_PROGRESS_WRITE_INTERVAL_S = 0.2
# A job writes no progress row before it has run this long: most documents are done
# sooner, and their stages reach the row with their outcome, in the same commit
# (nobody could have watched them anyway). A longer job reports as before: each
# stage change at once, the rest at most every _PROGRESS_WRITE_INTERVAL_S.
_PROGRESS_FIRST_WRITE_S = 0.2
_CANCEL_CHECK_INTERVAL_S = 0.25


# Claims the worker's next job inside the transaction that ends this one (or None).
ClaimNext = Callable[[Transaction], Claim | None]


class JobExecution:
    def __init__(
        self,
        claim: Claim,
        ledger: Ledger,
        *,
        soft_timeout_s: float,
        claim_next: ClaimNext | None = None,
    ) -> None:
        self.claim = claim
        self.ledger = ledger
        self.soft_timeout_s = soft_timeout_s
        self.started = time.monotonic()
        self.stages: list[dict[str, Any]] = []
        self.completed = False
        self.lease_lost = threading.Event()
        self.stopping = threading.Event()
        self._last_write = 0.0
        # The claim just read the row: its cancel flag is fresh.
        self._last_cancel_check = self.started
        self._cancelled_at_claim = claim.job.cancel_requested
        self._claim_next = claim_next
        # The job its worker runs next, claimed as this one succeeded: it holds only
        # once that transaction committed (Worker._execute).
        self.next_claim: Claim | None = None

    @property
    def job_id(self) -> str:
        return self.claim.job.id

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # --- checkpoints ------------------------------------------------------------

    def checkpoint(self) -> None:
        """Where a running job may stop cleanly: nothing is half-written here."""
        if self.lease_lost.is_set():
            raise JobLeaseLost("this worker lost the job's lease; another attempt owns it")
        if self.stopping.is_set():
            raise WorkerStopping("the worker is shutting down")
        if self.elapsed > self.soft_timeout_s:
            raise JobTimedOut(
                f"the job ran longer than its soft time limit of {self.soft_timeout_s:g} s "
                "(INGEST_JOB_SOFT_TIMEOUT_SECONDS)"
            )
        if self._cancelled_at_claim:
            raise JobCancelled("cancelled at the user's request")
        now = time.monotonic()
        if now - self._last_cancel_check >= _CANCEL_CHECK_INTERVAL_S:
            self._last_cancel_check = now
            if self.ledger.cancel_requested(self.job_id):
                raise JobCancelled("cancelled at the user's request")

    def progress(self, p: Progress) -> None:
        if self.completed:  # the outcome is committed; nothing left to report or stop
            return
        changed_stage = self._track_stage(p)
        now = time.monotonic()
        finished_stage = p.total > 0 and p.current >= p.total
        due = (
            changed_stage or finished_stage or now - self._last_write >= _PROGRESS_WRITE_INTERVAL_S
        )
        if due and now - self.started >= _PROGRESS_FIRST_WRITE_S:
            self._last_write = now
            try:
                self.ledger.report_progress(
                    self.claim,
                    stage=p.stage,
                    current=p.current,
                    total=p.total,
                    fraction=overall_fraction(p.stage, p.current, p.total),
                    message=p.message,
                    stages=self.stages,
                )
            except LeaseLost:
                self.lease_lost.set()
        self.checkpoint()

    def _track_stage(self, p: Progress) -> bool:
        now = time.time()
        current = self.stages[-1] if self.stages else None
        if current is not None and current["stage"] == p.stage:
            current.update(current=p.current, total=p.total, ended_at=now)
            return False
        self.stages.append(
            {
                "stage": p.stage,
                "started_at": now,
                "ended_at": now,
                "current": p.current,
                "total": p.total,
            }
        )
        return True

    # --- outcomes inside a caller's unit of work ----------------------------------------

    def succeed_in(
        self,
        tx: Transaction,
        result: Mapping[str, Any],
        *,
        document_id: str | None = None,
        document_settled: bool = False,
    ) -> None:
        """Mark success in `tx` (fenced: raises LeaseLost, rolling `tx` back, when this
        attempt no longer owns the job). `document_settled`: JobWriter.succeed."""
        tx.jobs.succeed(
            self.claim,
            result,
            self.stages,
            document_id=document_id,
            document_settled=document_settled,
        )
        self.completed = True
        if self._claim_next is not None:
            # One write transaction a job instead of two (the claim's own), and the
            # next job starts with no hand-over through the worker's loop.
            self.next_claim = self._claim_next(tx)

    def fail_in(
        self, tx: Transaction, *, error_type: str, message: str, result: Mapping[str, Any]
    ) -> None:
        if not tx.jobs.end_attempt(
            self.claim,
            JobStatus.FAILED,
            error_type=error_type,
            error_message=message,
            stages=self.stages,
            result=result,
        ):
            raise LeaseLost(self.job_id)
        self.completed = True
