"""Is this worker or scheduler doing its job? Read from the ledger, for the health
checks of containers (`ingest health worker|scheduler`)."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.jobs.scheduler import slot_of
from ingest.store.ledger import Ledger
from ingest.store.workers import WorkerRegistry


def worker_problem(workers: WorkerRegistry, hostname: str, *, stale_after: float) -> str | None:
    """None when a worker registered from `hostname` heartbeats; else why not."""
    mine = [w for w in workers.list(stale_after=stale_after) if w.hostname == hostname]
    if not mine:
        return f"no worker has registered from host {hostname!r}"
    if not any(w.live for w in mine):
        return f"no heartbeat from host {hostname!r} for more than {stale_after:g} s"
    return None


def scheduler_problem(
    ledger: Ledger, kinds: Sequence[str], *, interval: float, now: float
) -> str | None:
    """None when every scheduled kind has a job for this time slot or the last
    (some scheduler replica is ticking); else the kinds that have none."""
    slot = slot_of(now, interval)
    late = [kind for kind in kinds if not _scheduled_since(ledger, kind, slot - 1)]
    if late:
        return f"no maintenance job for this time slot or the last: {', '.join(late)}"
    return None


def _scheduled_since(ledger: Ledger, kind: str, slot: int) -> bool:
    newest = ledger.list_jobs(kind=kind, limit=1)
    return bool(newest) and int(newest[0].payload.get("slot", -1)) >= slot
