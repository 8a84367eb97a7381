"""The scheduler: enqueues periodic maintenance as ordinary ledger jobs.

Each task gets one job per time slot (slot = floor(now / interval)), keyed by an
idempotency key "task:slot". Any number of scheduler replicas may tick at once:
the unique key lets exactly one insert win.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ingest.jobs.doorbell import Doorbell
from ingest.jobs.maintenance import TASKS
from ingest.store.ledger import Job, NewJob

if TYPE_CHECKING:
    from ingest.context import Context

log = logging.getLogger(__name__)
MAINTENANCE_QUEUE = "maintenance"


def slot_of(now: float, interval: float) -> int:
    return int(now // interval)


class Scheduler:
    def __init__(self, services: Context, doorbell: Doorbell, *, reap: bool = True) -> None:
        """`reap=False` beside a worker in the same process: the worker reaps, and
        it spares its own running jobs, which it knows are alive."""
        self.services = services
        self.doorbell = doorbell
        self.reap = reap
        self.interval = services.settings.maintenance_interval_seconds
        self._stop = threading.Event()
        self._last_slot: int | None = None

    def tick(self, now: float | None = None) -> list[Job]:
        """Enqueue this slot's maintenance jobs unless some replica already did."""
        slot = slot_of(time.time() if now is None else now, self.interval)
        if slot == self._last_slot:
            return []
        submitted = []
        for task in TASKS:
            job = self.services.ledger.submit(
                NewJob(
                    kind=task,
                    payload={"slot": slot},
                    queue=MAINTENANCE_QUEUE,
                    max_attempts=self.services.settings.max_attempts,
                    idempotency_key=f"{task}:{slot}",
                )
            )
            self.doorbell.ring(job.queue, job.id)
            submitted.append(job)
        self._last_slot = slot
        return submitted

    def run(self) -> None:
        log.info("scheduler started: maintenance every %g s", self.interval)
        tick = self.services.settings.scheduler_tick_seconds
        while not self._stop.is_set():
            try:
                self.tick()
                reaped = self.services.ledger.reap_expired() if self.reap else []
                if reaped:
                    log.warning("requeued %d job(s) with expired leases: %s", len(reaped), reaped)
            except Exception:
                log.exception("scheduler tick failed; trying again")
            self._stop.wait(tick)
        log.info("scheduler stopped")

    def stop(self) -> None:
        self._stop.set()
