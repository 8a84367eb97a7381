"""Running synced-source syncs in a test, to the end."""

from __future__ import annotations

from ingest.context import Context
from ingest.ingestion import sources
from ingest.store import Job
from ingest.vocabulary import JobStatus, Queue


def run_sync(ctx: Context, source_id: str | None = None) -> Job:
    """Queue a sync (unless one is queued already) and run every job it leads to,
    here, until the sources and ingest queues are empty; the latest sync job."""
    queued = ctx.ledger.list_jobs(statuses=[JobStatus.QUEUED], kind=sources.SYNC, limit=10)
    if source_id is not None and not queued:
        sources.sync_now(ctx.store, ctx.settings, ctx.doorbell, source_id)
    ctx.worker(queues=[Queue.SOURCES, Queue.INGEST], burst=True).run()
    latest = ctx.ledger.list_jobs(kind=sources.SYNC, limit=1)[0]
    assert latest.is_terminal, latest
    return latest
