"""What a user does to jobs and documents: cancel, retry, delete, run maintenance
now, and the backpressure check before new work. The API, the CLI and the console call these,
so every interface has the same rules and the same errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ingest.errors import InvalidInput, JobFinished, JobNotRetryable, NotFound, QueueFull
from ingest.ingestion.discovery import is_under_roots
from ingest.ingestion.maintenance import TASKS
from ingest.jobs.doorbell import Doorbell
from ingest.settings import Settings
from ingest.store import DocumentRecord, Job, NewJob, Store
from ingest.vocabulary import ACTIVE, Queue

# A document deleted while jobs for it are in flight: at most this many are cancelled.
_CANCEL_ON_DELETE = 100


def get_job(store: Store, job_id: str) -> Job:
    job = store.jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def get_document(store: Store, document_id: str) -> DocumentRecord:
    doc = store.get_document(document_id)
    if doc is None:
        raise NotFound(f"no document {document_id}")
    return doc


def ensure_capacity(store: Store, settings: Settings) -> None:
    """Backpressure: past INGEST_MAX_QUEUED queued jobs, refuse instead of piling up."""
    if store.jobs.queued_count() >= settings.max_queued:
        raise QueueFull(f"more than {settings.max_queued} jobs are waiting; try again later")


def cancel_job(store: Store, job_id: str) -> Job:
    """A queued job is cancelled at once; a running one stops at its next checkpoint."""
    job = get_job(store, job_id)
    if job.is_terminal:
        raise JobFinished(f"job {job_id} is {job.status}")
    cancelled = store.jobs.cancel(job_id)
    if cancelled is None:  # purged in between
        raise NotFound(f"no job {job_id}")
    return cancelled


def retry_job(store: Store, settings: Settings, doorbell: Doorbell, job_id: str) -> Job:
    """Re-queue a failed, dead or cancelled job for a fresh set of attempts."""
    job = get_job(store, job_id)
    if not job.status.is_retryable:
        raise JobNotRetryable(
            f"job {job_id} is {job.status}; only failed, dead or cancelled jobs can be retried"
        )
    ensure_capacity(store, settings)
    retried = store.jobs.retry(job_id)
    if retried is None:
        raise NotFound(f"no job {job_id}")
    doorbell.ring(retried.queue, retried.id)
    return retried


def maintenance_kind(name: str) -> str:
    """A maintenance task by its kind (`maintenance.integrity`) or short name (`integrity`)."""
    kind = name if name.startswith("maintenance.") else f"maintenance.{name}"
    if kind not in TASKS:
        short = ", ".join(t.removeprefix("maintenance.") for t in TASKS)
        raise InvalidInput(f"no maintenance task {name!r}; the tasks are {short}", field="task")
    return kind


def run_maintenance_now(
    store: Store, settings: Settings, doorbell: Doorbell, kinds: Sequence[str]
) -> list[Job]:
    """Queue these maintenance tasks to run once, now, outside the scheduler's slots
    (for a deployment without a scheduler, or a check wanted at once)."""
    submitted = []
    for kind in kinds:
        job = store.jobs.submit(
            NewJob(
                kind=maintenance_kind(kind),
                payload={"requested": True},
                queue=Queue.MAINTENANCE,
                max_attempts=settings.max_attempts,
            )
        )
        doorbell.ring(job.queue, job.id)
        submitted.append(job)
    return submitted


def delete_document(store: Store, document_id: str) -> None:
    """Cancel the document's jobs in flight, then delete it with its chunks (and its
    child documents, a container's members, with theirs)."""
    get_document(store, document_id)
    in_flight = store.jobs.list_jobs(
        document_id=document_id, statuses=list(ACTIVE), limit=_CANCEL_ON_DELETE
    )
    for job in in_flight:
        store.jobs.cancel(job.id)
    store.delete_documents([document_id])


def delete_missing(store: Store, roots: Sequence[Path], collection: str, seen: set[str]) -> int:
    """`ingest add --sync`: drop the collection's documents under the given roots
    whose file is gone (a container's members go with it, never on their own:
    their source names no file)."""
    resolved = [r.resolve() for r in roots]
    gone = [
        d.id
        for d in store.documents_in(collection)
        if d.parent_id is None
        and d.source_uri not in seen
        and is_under_roots(d.source_uri, resolved)
    ]
    return store.delete_documents(gone) if gone else 0
