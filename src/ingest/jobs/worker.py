"""The worker: claims jobs from the ledger, runs them on a thread pool, keeps their
leases alive, reaps the leases of dead workers, and shuts down gracefully.

The same class runs inline (a thread of `ingest serve` / `ingest add`) and as
the `python -m ingest.worker` process; only the doorbell differs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from ingest.errors import JobLeaseLost, LeaseLost, UnknownJobKind, WorkerStopping
from ingest.jobs.execution import JobExecution
from ingest.jobs.policy import decide_failure, error_type_of
from ingest.jobs.runtime import Runtime
from ingest.logs import log_context
from ingest.store import Claim, Transaction
from ingest.vocabulary import JobStatus

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        runtime: Runtime,
        *,
        queues: Sequence[str],
        concurrency: int,
        burst: bool = False,
        worker_id: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.ledger = runtime.ledger
        self.doorbell = runtime.doorbell
        self.queues = list(queues)
        self.concurrency = concurrency
        self.burst = burst
        self.id = worker_id or new_worker_id()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
        # Keyed by the execution, not the job id: after its lease expired, this very
        # worker may claim the job again while the stale attempt is still winding down.
        self._active: dict[JobExecution, Future[None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._warm_thread: threading.Thread | None = None
        self._slot_freed = threading.Event()
        self._keeper_exit = threading.Event()
        self._last_reap = 0.0
        self._last_renewal = time.monotonic()
        self.jobs_run = 0
        # Whether its last look for work found none while it ran nothing: what is
        # left of a run it follows (`ingest add`) is then in nobody's hands here.
        self.idle = False

    # --- lifecycle ----------------------------------------------------------------

    def run(self) -> None:
        """Block, running jobs, until stop() (or, with burst, until nothing is left)."""
        self.runtime.workers.register(
            self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            queues=self.queues,
            concurrency=self.concurrency,
        )
        keeper = threading.Thread(target=self._keep_leases, name="leases", daemon=True)
        keeper.start()
        log.info(
            "worker %s started: queues=%s concurrency=%d", self.id, self.queues, self.concurrency
        )
        try:
            self._warm_up_before_claiming()
            self._loop()
        finally:
            self._shutdown()
            keeper.join(timeout=self.settings.heartbeat_seconds + 1)
            self._join_warm_up()

    def stop(self) -> None:
        """Ask the loop to stop claiming and shut down (safe from a signal handler)."""
        self._stop.set()
        self._slot_freed.set()

    @property
    def running_jobs(self) -> int:
        with self._lock:
            return len(self._active)

    def _warm_up_before_claiming(self) -> None:
        # Loaded inside the first job, the model counted against its lease: on a busy
        # host the load outlasted it and a live worker's job was requeued.
        # Meanwhile this worker still reaps: a dead worker's jobs go back to the queue
        # within seconds even while the only live worker loads its model.
        warm_up = self.runtime.warm_up
        if warm_up is None:
            return
        warmed = threading.Event()

        def warm() -> None:
            try:
                warm_up(self.queues)
            except Exception:
                # Not fatal: each job meets the same error and reports it on the job.
                log.exception("warming up failed; jobs will report the error")
            finally:
                warmed.set()

        self._warm_thread = threading.Thread(target=warm, name="warm-up", daemon=True)
        self._warm_thread.start()
        while not warmed.wait(self.settings.poll_seconds) and not self._stop.is_set():
            self._reap_if_due()

    def _join_warm_up(self) -> None:
        # Stopped while the model still loads (an inline `ingest add` whose jobs another
        # process finished first): the process must not exit under a thread that is
        # inside ONNX Runtime's session set-up, which aborts it ("terminate called
        # without an active exception", exit -6). The load takes seconds.
        if self._warm_thread is not None:
            self._warm_thread.join()

    def _loop(self) -> None:
        poll = self.settings.poll_seconds
        while not self._stop.is_set():
            self._reap_if_due()
            claimed = self._fill()
            if self.burst and not claimed and self.running_jobs == 0 and not self._runnable_left():
                log.info("burst: queue drained, exiting")
                return
            if self.running_jobs >= self.concurrency:
                self._slot_freed.wait(poll)
                self._slot_freed.clear()
            elif not claimed:
                self.doorbell.wait(self.queues, poll)

    def _runnable_left(self) -> bool:
        # Only this worker's queues: another queue's backlog would keep it forever.
        return any(
            self.ledger.list_jobs(
                statuses=[JobStatus.QUEUED, JobStatus.RUNNING], queue=queue, limit=1
            )
            for queue in self.queues
        )

    def _fill(self) -> int:
        free = self.concurrency - self.running_jobs
        if self._stop.is_set() or free <= 0:
            return 0
        claims = self.ledger.claim_many(self.id, self.queues, self.settings.lease_seconds, free)
        for claim in claims:
            self._start(claim)
        self.idle = not claims and self.running_jobs == 0
        return len(claims)

    def _reap_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_reap < self.settings.poll_seconds:
            return
        self._last_reap = now
        try:
            # Never this worker's own running attempts: it knows they are alive.
            reaped = self.ledger.reap_expired(spare=self._active_claims())
        except Exception:
            log.exception("reaping expired leases failed")
            return
        if reaped:
            log.warning(
                "requeued %d job(s) whose worker stopped responding: %s", len(reaped), reaped
            )

    # --- running one job ------------------------------------------------------------

    def _start(self, claim: Claim) -> None:
        execution = JobExecution(
            claim,
            self.ledger,
            soft_timeout_s=self.settings.job_soft_timeout_seconds,
            claim_next=self._claim_next,
        )
        with self._lock:
            future = self._pool.submit(self._execute, execution)
            self._active[execution] = future

    def _claim_next(self, tx: Transaction) -> Claim | None:
        """The job to run next in the slot a succeeding job frees, claimed in the
        transaction that records its success (JobExecution.succeed_in)."""
        if self._stop.is_set():
            return None
        claims = tx.jobs.claim(self.id, self.queues, self.settings.lease_seconds, 1)
        return claims[0] if claims else None

    def _start_chained(self, claim: Claim) -> None:
        try:
            self._start(claim)
        except RuntimeError:  # the pool is shut down: the worker is stopping
            self.ledger.hand_back(claim)

    def _active_claims(self) -> list[Claim]:
        with self._lock:
            return [execution.claim for execution in self._active]

    def _execute(self, execution: JobExecution) -> None:
        claim = execution.claim
        job = claim.job
        log_context.set({"job_id": job.id})
        chained: Claim | None = None
        log.info(
            "job %s (%s) attempt %d/%d started", job.id, job.kind, claim.attempt, job.max_attempts
        )
        try:
            handler = self.runtime.handlers.get(job.kind)
            if handler is None:
                raise UnknownJobKind(f"unknown job kind {job.kind!r}")
            result = handler(execution)
            if not execution.completed:
                with self.runtime.store.transaction() as tx:
                    execution.succeed_in(tx, result or {})
            log.info("job %s finished in %.2f s", job.id, execution.elapsed)
            # Claimed with the success, so committed with it (on any error it rolled
            # back with it, and nothing was claimed).
            chained = execution.next_claim
        except (LeaseLost, JobLeaseLost):
            log.warning(
                "job %s: attempt %d lost its lease; its work was discarded",
                job.id,
                claim.attempt,
            )
        except WorkerStopping:
            self.ledger.hand_back(claim)
            log.info("job %s handed back for another worker", job.id)
        except BaseException as exc:  # every failure must end in the ledger
            self._record_failure(execution, exc)
        finally:
            # The next job is running before this one leaves: the worker is never seen
            # with nothing to do (and shut down under it) in between.
            if chained is not None:
                self._start_chained(chained)
            with self._lock:
                self._active.pop(execution, None)
                self.jobs_run += 1
            self._slot_freed.set()

    def _record_failure(self, execution: JobExecution, exc: BaseException) -> None:
        claim = execution.claim
        s = self.settings
        decision = decide_failure(
            exc,
            attempt=claim.attempt,
            max_attempts=claim.job.max_attempts,
            base=s.retry_base_seconds,
            cap=s.retry_max_seconds,
        )
        retry_at = time.time() + decision.retry_in if decision.retry_in is not None else None
        written = self.ledger.end_attempt(
            claim,
            decision.status,
            error_type=decision.error_type,
            error_message=str(exc) or error_type_of(exc),
            error_traceback="".join(traceback.format_exception(exc)),
            retry_at=retry_at,
            stages=execution.stages,
        )
        quiet = (JobStatus.CANCELLED, JobStatus.QUEUED)
        level = logging.INFO if decision.status in quiet else logging.WARNING
        log.log(
            level,
            "job %s attempt %d -> %s (%s: %s)%s",
            claim.job.id,
            claim.attempt,
            decision.status,
            decision.error_type,
            exc,
            "" if written else " [not recorded: lease lost]",
        )

    # --- leases, registry, watchdog ----------------------------------------------------

    def _keep_leases(self) -> None:
        # Runs until shutdown has settled every job, so leases survive the grace period.
        while not self._keeper_exit.wait(self.settings.heartbeat_seconds):
            self._heartbeat_once()

    def _heartbeat_once(self) -> None:
        with self._lock:
            executions = list(self._active)
        running = [
            e
            for e in executions
            if not e.lease_lost.is_set() and not self._abandon_if_past_hard_limit(e)
        ]
        self._renew(running)
        try:
            self.runtime.workers.heartbeat(self.id, len(executions))
        except Exception:
            log.exception("worker heartbeat failed")

    def _renew(self, executions: list[JobExecution]) -> None:
        if not executions:
            self._last_renewal = time.monotonic()
            return
        try:
            lost = self.ledger.renew_leases(
                [e.claim for e in executions], self.settings.lease_seconds
            )
        except Exception:
            log.exception("renewing the leases of %d job(s) failed", len(executions))
            return
        now = time.monotonic()
        if now - self._last_renewal > self.settings.lease_seconds:
            log.warning(
                "leases renewed %.1f s after the last renewal, past the %g s lease "
                "(was this process paused or starved?): another worker or scheduler "
                "may have requeued its jobs",
                now - self._last_renewal,
                self.settings.lease_seconds,
            )
        self._last_renewal = now
        for execution in executions:
            if any(claim is execution.claim for claim in lost):
                execution.lease_lost.set()  # stops at its next checkpoint

    def _abandon_if_past_hard_limit(self, execution: JobExecution) -> bool:
        """Past the hard time limit: end the attempt and fence its writes out."""
        if execution.elapsed <= self.settings.job_hard_timeout_seconds:
            return False
        # The thread cannot be killed; its late writes are fenced out.
        try:
            self.ledger.end_attempt(
                execution.claim,
                JobStatus.FAILED,
                error_type="timeout",
                error_message=(
                    f"the job ran past its hard time limit of "
                    f"{self.settings.job_hard_timeout_seconds:g} s and was abandoned "
                    "(INGEST_JOB_HARD_TIMEOUT_SECONDS)"
                ),
                stages=execution.stages,
            )
        except Exception:
            log.exception("abandoning job %s failed", execution.job_id)
            return False
        execution.lease_lost.set()
        return True

    # --- shutdown ------------------------------------------------------------------------

    def _shutdown(self) -> None:
        grace = self.settings.shutdown_grace_seconds
        deadline = time.monotonic() + grace
        while self.running_jobs and time.monotonic() < deadline:
            self._slot_freed.wait(0.1)
            self._slot_freed.clear()
        with self._lock:
            leftovers = list(self._active.items())
        for execution, _ in leftovers:
            execution.stopping.set()  # hand back at the next checkpoint
        for execution, future in leftovers:
            with contextlib.suppress(Exception):  # its outcome is the ledger's business
                future.result(timeout=5)
            if not future.done() and self.ledger.hand_back(execution.claim):
                log.warning("job %s was stuck; handed back without waiting", execution.job_id)
        self._keeper_exit.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        try:
            self.runtime.workers.stopped(self.id)
        except Exception:
            log.exception("could not mark worker %s stopped", self.id)
        log.info("worker %s stopped after %d job(s)", self.id, self.jobs_run)
