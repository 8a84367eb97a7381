"""Synced sources: register a folder or an S3 prefix, and sync it as a ledger job.

A sync lists the source, submits what is new or changed (by content hash, as
`ingest add --sync`: only those files get an ingest job; an S3 object listed with
the ETag, size and LastModified it had when last hashed is judged by that hash,
unread), deletes the documents whose file or object is gone, and records its report
on the source row together with the job's outcome. A source that cannot be listed
fails its sync with the reason and keeps every document."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import DocumentRejected, NotFound, SourceNotAllowed, SourceUnavailable
from ingest.ingestion.plan import plan_files
from ingest.ingestion.source_listing import (
    S3_SCHEME,
    FolderListing,
    Listed,
    S3Listing,
    is_selected,
    listing_for,
    normalize_location,
    parse_every,
)
from ingest.ingestion.submit import StagedUpload, Submitter
from ingest.jobs.doorbell import Doorbell
from ingest.jobs.execution import JobExecution
from ingest.jobs.progress import Progress
from ingest.jobs.scheduler import slot_of
from ingest.settings import Settings
from ingest.staging import sanitize_filename
from ingest.store import DocumentRecord, Job, NewJob, Store, new_job_id
from ingest.store.sources import RememberedObject, SourceRecord, SyncOutcome
from ingest.vocabulary import Queue

if TYPE_CHECKING:  # the ingestor pulls in every parser library: built at the first sync
    from ingest.ingestion.ingestor import Ingestor

SYNC = "source.sync"
# A report names at most this many failed files, and the CLI follows at most this
# many submitted jobs (a sync of a new 100,000-file folder still records its counts).
_MAX_ERRORS = 20
_MAX_JOB_IDS = 1000
# A sync records what it learned about objects (listing and content hash) this many
# at a time: a sync stopped half-way keeps what it read.
_REMEMBER_BATCH = 500
DEFAULT_EVERY = "1h"


@dataclass
class SyncReport:
    listed: int = 0
    submitted: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)

    def submitted_job(self, job: Job) -> None:
        self.submitted += 1
        if len(self.job_ids) < _MAX_JOB_IDS:
            self.job_ids.append(job.id)

    def failure(self, source: str, reason: str) -> None:
        self.failed += 1
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append({"source": source, "reason": reason})


# --- registering, syncing now, removing (the CLI and the API call these) --------------


def add_source(
    store: Store,
    settings: Settings,
    doorbell: Doorbell,
    location: str,
    *,
    collection: str,
    every: str = DEFAULT_EVERY,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> tuple[SourceRecord, Job]:
    """Register a source and queue its first sync (this period's: a scheduler
    ticking now finds it already queued)."""
    source = store.sources.add(
        location=normalize_location(location),
        collection=collection,
        interval_seconds=parse_every(every),
        include=list(include),
        exclude=list(exclude),
    )
    job = store.jobs.submit(scheduled_sync(source, time.time(), settings.max_attempts))
    doorbell.ring(job.queue, job.id)
    return source, job


def check_api_location(location: str, settings: Settings) -> None:
    """Through the API a folder source must lie under INGEST_SOURCE_ROOTS: an API key
    must not make the server index any folder it can read (/etc, other tenants')."""
    if location.startswith(S3_SCHEME):
        return
    if not Path(location).is_absolute():
        raise SourceNotAllowed(f"{location!r}: a folder source is an absolute path")
    roots = settings.source_root_paths
    if not roots:
        raise SourceNotAllowed(
            "folder sources can be added through the API only under INGEST_SOURCE_ROOTS "
            "(unset on this server); `ingest sources add` on the server can add any"
        )
    path = Path(location).resolve()
    if not any(path == root or root in path.parents for root in roots):
        raise SourceNotAllowed(f"{location!r} is not under INGEST_SOURCE_ROOTS")


def get_source(store: Store, source_id: str) -> SourceRecord:
    source = store.sources.get(source_id)
    if source is None:
        raise NotFound(f"no source {source_id}")
    return source


def sync_now(store: Store, settings: Settings, doorbell: Doorbell, source_id: str) -> Job:
    """Queue a sync of the source now, outside its period."""
    source = get_source(store, source_id)
    job = store.jobs.submit(
        NewJob(
            kind=SYNC,
            payload={"source_id": source.id, "requested": True},
            queue=Queue.SOURCES,
            max_attempts=settings.max_attempts,
        )
    )
    doorbell.ring(job.queue, job.id)
    return job


def remove_source(store: Store, source_id: str) -> None:
    """Stop syncing; the documents it brought in stay (delete them as any other)."""
    if not store.sources.remove(source_id):
        raise NotFound(f"no source {source_id}")


def scheduled_sync(source: SourceRecord, now: float, max_attempts: int) -> NewJob:
    """The sync of this source for the period `now` falls in: one per period, however
    many schedulers ask (the idempotency key names the period)."""
    slot = slot_of(now, source.interval_seconds)
    return NewJob(
        kind=SYNC,
        payload={"source_id": source.id, "slot": slot},
        queue=Queue.SOURCES,
        max_attempts=max_attempts,
        idempotency_key=f"{SYNC}:{source.id}:{slot}",
    )


def due_syncs(store: Store, settings: Settings) -> Callable[[float], list[NewJob]]:
    """For the scheduler: every source's sync of the current period."""

    def due(now: float) -> list[NewJob]:
        return [scheduled_sync(s, now, settings.max_attempts) for s in store.sources.list()]

    return due


# --- one sync ---------------------------------------------------------------------------


class SourceSync:
    """List, submit what changed, delete what is gone."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        submitter: Submitter,
        ingestor: Callable[[], Ingestor],
    ) -> None:
        self.store = store
        self.settings = settings
        self.submitter = submitter
        self.ingestor = ingestor

    def run(self, source: SourceRecord, checkpoint: Callable[[], None]) -> SyncReport:
        listing = listing_for(source.location, endpoint_url=self.settings.s3_endpoint_url)
        listed = [
            item
            for item in listing.list()
            if is_selected(item.relative, source.include, source.exclude)
        ]
        report = SyncReport(listed=len(listed))
        # The collection's documents, read once: the unchanged checks and the deletions.
        known = {d.source_uri: d for d in self.store.documents_in(source.collection)}
        if isinstance(listing, S3Listing):
            self._submit_objects(source, listing, listed, known, report, checkpoint)
        else:
            self._submit_files(source, listed, known, report, checkpoint)
        seen = {item.uri for item in listed}
        report.deleted = self._delete_gone(source, listing, known, seen)
        return report

    def _submit_files(
        self,
        source: SourceRecord,
        listed: Sequence[Listed],
        known: Mapping[str, DocumentRecord],
        report: SyncReport,
        checkpoint: Callable[[], None],
    ) -> None:
        files = [Path(item.uri) for item in listed]
        plan = plan_files(
            self.ingestor(), files, collection=source.collection, metadata={}, known=known
        )
        report.unchanged = len(plan.skipped) + len(plan.known_failures)
        stage = self.settings.mode == "queue"
        for path in plan.to_submit:
            checkpoint()
            try:
                job = self.submitter.submit_path(path, collection=source.collection, stage=stage)
            except (OSError, DocumentRejected) as exc:  # gone since the listing, too large
                report.failure(str(path), _reason(exc))
                continue
            report.submitted_job(job)

    def _submit_objects(
        self,
        source: SourceRecord,
        listing: S3Listing,
        listed: Sequence[Listed],
        known: Mapping[str, DocumentRecord],
        report: SyncReport,
        checkpoint: Callable[[], None],
    ) -> None:
        """An object listed as when its bytes were last hashed (same ETag, size and
        LastModified) is judged by that hash, unread; any other is read (bounded),
        hashed, and submitted like an upload when new or changed."""
        from ingest.ingestion.ingestor import content_hash  # built by now: self.ingestor()

        remembered = self.store.sources.objects(source.id)
        learned: dict[str, RememberedObject] = {}
        for item in listed:
            checkpoint()
            filename = sanitize_filename(item.relative)
            before = remembered.get(item.uri)
            if (
                before is not None
                and item.identity is not None
                and before.listed == item.identity
                and self._unchanged(source, item, filename, before.content_hash, known)
            ):
                report.unchanged += 1
                continue
            try:
                fetched = listing.fetch(item, max_bytes=self.settings.max_upload_bytes)
            except (DocumentRejected, SourceUnavailable) as exc:
                report.failure(item.uri, str(exc))
                continue
            digest = content_hash(fetched.data)
            # Remembered only when the bytes read are the object as listed.
            now = RememberedObject(item.identity, digest) if item.identity else None
            if fetched.as_listed and now is not None and now != before:
                learned[item.uri] = now
            if len(learned) >= _REMEMBER_BATCH:
                self.store.sources.remember(source.id, learned)
                learned = {}
            if self._unchanged(source, item, filename, digest, known):
                report.unchanged += 1
                continue
            self._submit_bytes(source, item, filename, fetched.data, report)
        self.store.sources.remember(source.id, learned)
        listed_uris = {item.uri for item in listed}
        gone = [uri for uri in remembered if uri not in listed_uris]
        self.store.sources.forget(source.id, gone)

    def _unchanged(
        self,
        source: SourceRecord,
        item: Listed,
        filename: str,
        digest: str,
        known: Mapping[str, DocumentRecord],
    ) -> bool:
        record = self.ingestor().unchanged_digest(
            digest,
            source_uri=item.uri,
            filename=filename,
            collection=source.collection,
            known=known,
        )
        return record is not None

    def _submit_bytes(
        self, source: SourceRecord, item: Listed, filename: str, data: bytes, report: SyncReport
    ) -> None:
        max_bytes = self.settings.max_upload_bytes
        job_id = new_job_id()
        staged = self.submitter.staging.put(io.BytesIO(data), job_id, filename, max_bytes=max_bytes)
        upload = StagedUpload(job_id, staged, filename, item.uri)
        jobs = self.submitter.submit_uploads([upload], collection=source.collection)
        report.submitted_job(jobs[0])

    def _delete_gone(
        self,
        source: SourceRecord,
        listing: FolderListing | S3Listing,
        known: Mapping[str, DocumentRecord],
        seen: set[str],
    ) -> int:
        """The source's documents (under its location, selected by its globs) whose
        file or object was not listed: gone, renamed, or no longer selected."""
        gone = []
        for doc in known.values():
            if doc.source_uri in seen:
                continue
            relative = listing.relative(doc.source_uri)
            if relative is not None and is_selected(relative, source.include, source.exclude):
                gone.append(doc.id)
        return self.store.delete_documents(gone) if gone else 0


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"cannot read file: {exc.strerror or exc}"
    return str(exc)


class SyncHandler:
    """Runs `source.sync` jobs; the outcome and the source's report commit together."""

    def __init__(self, store: Store, sync: Callable[[], SourceSync]) -> None:
        self.store = store
        self.sync = sync

    def __call__(self, execution: JobExecution) -> dict[str, Any] | None:
        source_id = str(execution.claim.job.payload["source_id"])
        source = self.store.sources.get(source_id)
        if source is None:
            return {"source_id": source_id, "skipped": "the source was removed"}
        started = time.time()
        execution.progress(Progress("list", 0, 1, f"listing {source.location}"))
        try:
            report = self.sync().run(source, execution.checkpoint)
        except SourceUnavailable as exc:
            self._record_failure(execution, source, started, str(exc))
            return None
        result = {
            "source_id": source.id,
            **asdict(report),
            "started_at": started,
            "finished_at": time.time(),
        }
        outcome = SyncOutcome(
            execution.job_id, "succeeded", started, result["finished_at"], report=result
        )
        with self.store.transaction() as tx:
            tx.sources.record_sync(source.id, outcome)
            execution.succeed_in(tx, result)
        return None

    def _record_failure(
        self, execution: JobExecution, source: SourceRecord, started: float, reason: str
    ) -> None:
        """Not retried: the next period tries again, and the reason is on the source."""
        outcome = SyncOutcome(execution.job_id, "failed", started, time.time(), error=reason)
        with self.store.transaction() as tx:
            tx.sources.record_sync(source.id, outcome)
            execution.fail_in(
                tx,
                error_type="source_unavailable",
                message=reason,
                result={"source_id": source.id, "started_at": started},
            )
