"""The scheduler: enqueues periodic jobs (maintenance) as ordinary ledger jobs.

Each kind gets one job per time slot (slot = floor(now / interval)), keyed by an
idempotency key "kind:slot". Any number of scheduler replicas may tick at once:
the unique key lets exactly one insert win. Jobs with periods of their own (synced
sources, `Runtime.periodic_jobs`) come keyed the same way by their period.
"""

from __future__ import annotations

import logging
import threading
import time

from ingest.jobs.runtime import Runtime
from ingest.store import Job, NewJob
from ingest.vocabulary import Queue

log = logging.getLogger(__name__)
# Keys this replica already submitted are not submitted again; past this many the
# memory starts over (a resubmission only finds the job the key already has).
_MAX_REMEMBERED_KEYS = 10_000


def slot_of(now: float, interval: float) -> int:
    return int(now // interval)


class Scheduler:
    def __init__(self, runtime: Runtime, *, reap: bool = True) -> None:
        """`reap=False` beside a worker in the same process: the worker reaps, and
        it spares its own running jobs, which it knows are alive."""
        self.runtime = runtime
        self.reap = reap
        self.interval = runtime.settings.maintenance_interval_seconds
        self._stop = threading.Event()
        self._last_slot: int | None = None
        self._submitted_keys: set[str] = set()

    def tick(self, now: float | None = None) -> list[Job]:
        """Enqueue this slot's periodic jobs unless some replica already did."""
        at = time.time() if now is None else now
        return self._maintenance(at) + self._periodic(at)

    def _maintenance(self, now: float) -> list[Job]:
        slot = slot_of(now, self.interval)
        if slot == self._last_slot:
            return []
        submitted = []
        for kind in self.runtime.scheduled_kinds:
            job = self.runtime.ledger.submit(
                NewJob(
                    kind=kind,
                    payload={"slot": slot},
                    queue=Queue.MAINTENANCE,
                    max_attempts=self.runtime.settings.max_attempts,
                    idempotency_key=f"{kind}:{slot}",
                )
            )
            self.runtime.doorbell.ring(job.queue, job.id)
            submitted.append(job)
        self._last_slot = slot
        return submitted

    def _periodic(self, now: float) -> list[Job]:
        if self.runtime.periodic_jobs is None:
            return []
        submitted = []
        for new in self.runtime.periodic_jobs(now):
            key = new.idempotency_key
            if key is None or key in self._submitted_keys:
                continue
            job = self.runtime.ledger.submit(new)
            self.runtime.doorbell.ring(job.queue, job.id)
            submitted.append(job)
            if len(self._submitted_keys) >= _MAX_REMEMBERED_KEYS:
                self._submitted_keys.clear()
            self._submitted_keys.add(key)
        return submitted

    def run(self) -> None:
        log.info("scheduler started: maintenance every %g s", self.interval)
        tick = self.runtime.settings.scheduler_tick_seconds
        while not self._stop.is_set():
            try:
                self.tick()
                reaped = self.runtime.ledger.reap_expired() if self.reap else []
                if reaped:
                    log.warning("requeued %d job(s) with expired leases: %s", len(reaped), reaped)
            except Exception:
                log.exception("scheduler tick failed; trying again")
            self._stop.wait(tick)
        log.info("scheduler stopped")

    def stop(self) -> None:
        self._stop.set()
