"""What the job runtime (worker, scheduler) is given by the wiring: the store (its
ledger, worker registry and unit of work), the doorbell, the handlers, the settings.

The runtime knows nothing about documents: the application registers its job
kinds in `handlers` (context.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ingest.jobs.doorbell import Doorbell
from ingest.jobs.handlers import NOOP, Handler, run_noop
from ingest.settings import Settings
from ingest.store import NewJob, Store
from ingest.store.ledger import Ledger
from ingest.store.workers import WorkerRegistry


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    store: Store
    doorbell: Doorbell
    handlers: Mapping[str, Handler] = field(default_factory=lambda: {NOOP: run_noop})
    # Periodic jobs the scheduler enqueues once per time slot.
    scheduled_kinds: tuple[str, ...] = ()
    # Other periodic jobs, each on its own period (synced sources): the jobs due at
    # time `now`, each with an idempotency key naming its period.
    periodic_jobs: Callable[[float], Sequence[NewJob]] | None = None
    # Called once before a worker serving these queues claims its first job, so a
    # slow start (a model load) never runs inside a lease.
    warm_up: Callable[[list[str]], None] | None = None

    @property
    def ledger(self) -> Ledger:
        return self.store.jobs

    @property
    def workers(self) -> WorkerRegistry:
        return self.store.workers
