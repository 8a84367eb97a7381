"""Submitting ingestion jobs: stage the bytes, then commit document row + job (+ staged
file record) in one transaction, then ring the doorbell. The one way work gets into
the ledger: uploads, `ingest add` and files placed in the incoming folder alike."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ingest.errors import IdempotencyKeyReused, InvalidInput
from ingest.ingestion.handlers import INGEST
from ingest.jobs.doorbell import Doorbell
from ingest.pipeline.filenames import recorded_metadata
from ingest.settings import Settings
from ingest.staging import StagedFile, Staging, sanitize_filename
from ingest.store import Job, NewJob, Store, Transaction, new_job_id
from ingest.vocabulary import MAX_PRIORITY, MIN_PRIORITY, Queue

# Local files queued per transaction by `submit_paths`.
SUBMIT_BATCH = 200
# The first bytes of an upload, checked against the type its name claims.
_SNIFF_BYTES = 8192


def check_priority(priority: int) -> int:
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise InvalidInput(
            f"priority {priority} is out of range: {MIN_PRIORITY}..{MAX_PRIORITY} "
            "(higher runs first)",
            field="priority",
        )
    return priority


def upload_idempotency_key(key: str, index: int) -> str:
    """The ledger key of file `index` of an upload sent with this Idempotency-Key. A
    hash, so every client key (up to 200 characters) fits the 200-character column."""
    return f"upload:{hashlib.sha256(key.encode()).hexdigest()}:{index}"


@dataclass(frozen=True, slots=True)
class StagedUpload:
    """One file of an upload, staged under its job's id, not yet queued."""

    job_id: str
    staged: StagedFile
    filename: str
    source_uri: str


@dataclass(frozen=True, slots=True)
class IncomingFile:
    """One file of an upload as the client sent it: its name and its bytes."""

    filename: str
    stream: IO[bytes]


def request_fingerprint(
    uploads: Sequence[StagedUpload], collection: str, metadata: Mapping[str, Any]
) -> str:
    """What an upload asked for: the same files (names and bytes), collection and
    metadata give the same fingerprint."""
    request = {
        "files": [[u.filename, u.staged.sha256, u.staged.size] for u in uploads],
        "collection": collection,
        "metadata": metadata,
    }
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def staged_location(staged: StagedFile) -> dict[str, Any]:
    """What a job payload says of its staged bytes: where they are, and the size and
    SHA-256 the worker checks them against before ingesting."""
    return {"staged": staged.relative, "staged_size": staged.size, "staged_sha256": staged.sha256}


class _KeyTaken(Exception):
    """Inside the upload transaction: an earlier request owns the idempotency key
    (private: raised to roll back every row this upload wrote)."""


class Submitter:
    """The one way work gets into the ledger: the API, the CLI and (later) synced
    sources all submit through here."""

    def __init__(
        self, store: Store, settings: Settings, doorbell: Doorbell, staging: Staging
    ) -> None:
        self.store = store
        self.settings = settings
        self.doorbell = doorbell
        self.staging = staging

    def discard_staged(self, uploads: Sequence[StagedUpload]) -> None:
        """Remove the staged bytes of uploads that will not be queued."""
        for upload in uploads:
            self.staging.discard(upload.job_id)

    # --- local files (`ingest add`) -------------------------------------------------

    def submit_path(
        self,
        path: Path,
        *,
        collection: str,
        metadata: Mapping[str, Any] | None = None,
        stage: bool,
        idempotency_key: str | None = None,
        priority: int = 0,
    ) -> Job:
        """Queue one local file. With `stage`, its bytes are copied into staging (the
        shared incoming folder or the bucket) first, so a worker on another machine
        can read them."""
        source = str(path.resolve())
        if not stage:
            payload: dict[str, Any] = {"path": source}
            return self._commit(
                payload, None, source, path.name, collection, metadata, idempotency_key, priority
            )
        return self._stage_and_commit(path, source, collection, metadata, idempotency_key, priority)

    def submit_paths(
        self,
        paths: Sequence[Path],
        *,
        collection: str,
        metadata: Mapping[str, Any] | None = None,
        stage: bool,
        priority: int = 0,
    ) -> list[Job]:
        """Queue local files, as `submit_path` does one. Without staging, up to
        SUBMIT_BATCH files share one transaction (a 1,000-file `ingest add` spent a
        third of its submitting in BEGIN and COMMIT); a batch commits whole or not at
        all, and a run interrupted between batches is taken up by the next `ingest
        add` (the files queued already are followed, not queued twice)."""
        if stage:
            return [
                self.submit_path(
                    path, collection=collection, metadata=metadata, stage=True, priority=priority
                )
                for path in paths
            ]
        check_priority(priority)
        submitted: list[Job] = []
        for start in range(0, len(paths), SUBMIT_BATCH):
            batch = paths[start : start + SUBMIT_BATCH]
            with self.store.transaction() as tx:
                jobs = [
                    self._enqueue_in(
                        tx,
                        {"path": str(path.resolve())},
                        None,
                        str(path.resolve()),
                        path.name,
                        collection,
                        metadata,
                        None,
                        priority,
                    )
                    for path in batch
                ]
            for job in jobs:
                self.doorbell.ring(job.queue, job.id)
            submitted.extend(jobs)
        return submitted

    def _stage_and_commit(
        self,
        path: Path,
        source_uri: str,
        collection: str,
        metadata: Mapping[str, Any] | None,
        idempotency_key: str | None,
        priority: int,
    ) -> Job:
        job_id = new_job_id()
        with path.open("rb") as stream:
            staged = self.staging.put(
                stream, job_id, path.name, max_bytes=self.settings.max_file_bytes
            )
        return self._commit(
            staged_location(staged),
            staged,
            source_uri,
            path.name,
            collection,
            metadata,
            idempotency_key,
            priority,
            job_id=job_id,
        )

    def submit_incoming(
        self,
        path: Path,
        *,
        collection: str,
        metadata: Mapping[str, Any] | None = None,
        priority: int = 0,
    ) -> Job:
        """Queue a file a client already placed in INGEST_INCOMING_DIR. It is the
        client's file, so maintenance never deletes it (no staged-file record). With
        S3 staging the workers share no folder with this process: a copy is staged
        in the bucket (and removed when done), the client's file is left alone."""
        root = self.settings.incoming_dir.resolve()
        relative = path.resolve().relative_to(root).as_posix()
        if self.staging.name != "filesystem":
            return self._stage_and_commit(
                path, f"incoming://{relative}", collection, metadata, None, priority
            )
        return self._commit(
            {"staged": relative},
            None,
            f"incoming://{relative}",
            path.name,
            collection,
            metadata,
            None,
            priority,
        )

    # --- uploads ----------------------------------------------------------------------

    def submit_upload(
        self,
        files: Sequence[IncomingFile],
        *,
        collection: str,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        priority: int = 0,
    ) -> list[Job]:
        """Check every file's type, stage each (fsync'd), then queue all their jobs in
        one transaction: every file of the upload is accepted, or none is, and a
        refusal leaves nothing staged."""
        # Here, not at import: the check reads the parser registry, and a process that
        # never takes an upload (a one-shot search, a worker) need not load it.
        from ingest.pipeline.parsers.sniff import check_upload

        named = [(sanitize_filename(f.filename), f.stream) for f in files]
        for filename, stream in named:
            head = stream.read(_SNIFF_BYTES)
            stream.seek(0)
            check_upload(filename, head)
        staged: list[StagedUpload] = []
        try:
            for filename, stream in named:
                job_id = new_job_id()
                on_disk = self.staging.put(
                    stream, job_id, filename, max_bytes=self.settings.max_upload_bytes
                )
                source_uri = f"upload://{collection}/{filename}"
                staged.append(StagedUpload(job_id, on_disk, filename, source_uri))
        except BaseException:
            self.discard_staged(staged)
            raise
        return self.submit_uploads(
            staged,
            collection=collection,
            metadata=metadata,
            idempotency_key=idempotency_key,
            priority=priority,
        )

    def submit_uploads(
        self,
        uploads: Sequence[StagedUpload],
        *,
        collection: str,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        priority: int = 0,
    ) -> list[Job]:
        """Queue every staged file of one upload in ONE transaction: all or none. The
        staged bytes are removed unless their jobs commit. With an idempotency key
        an earlier upload already used, the same request gets that upload's jobs
        back and a different one is refused (IdempotencyKeyReused)."""
        fingerprint = request_fingerprint(uploads, collection, metadata or {})
        try:
            with self.store.transaction() as tx:
                jobs = [
                    self._enqueue_upload(
                        tx,
                        upload,
                        index,
                        collection,
                        metadata,
                        idempotency_key,
                        fingerprint,
                        priority,
                    )
                    for index, upload in enumerate(uploads)
                ]
        except _KeyTaken:
            self.discard_staged(uploads)
            assert idempotency_key is not None
            return self._earlier_upload(idempotency_key, len(uploads), fingerprint)
        except BaseException:
            self.discard_staged(uploads)
            raise
        for job in jobs:
            self.doorbell.ring(job.queue, job.id)
        return jobs

    def _enqueue_upload(
        self,
        tx: Transaction,
        upload: StagedUpload,
        index: int,
        collection: str,
        metadata: Mapping[str, Any] | None,
        idempotency_key: str | None,
        fingerprint: str,
        priority: int,
    ) -> Job:
        key = upload_idempotency_key(idempotency_key, index) if idempotency_key else None
        job = self._enqueue_in(
            tx,
            {**staged_location(upload.staged), "request_fingerprint": fingerprint},
            upload.staged,
            upload.source_uri,
            upload.filename,
            collection,
            metadata,
            key,
            priority,
            job_id=upload.job_id,
        )
        if job.id != upload.job_id:
            raise _KeyTaken()
        return job

    def _earlier_upload(self, idempotency_key: str, count: int, fingerprint: str) -> list[Job]:
        keys = [upload_idempotency_key(idempotency_key, i) for i in range(count)]
        jobs = self.store.jobs.by_idempotency_keys(keys)
        if len(jobs) != count or any(
            j.payload.get("request_fingerprint") != fingerprint for j in jobs
        ):
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a request with other files, "
                "collection or metadata; use a new key for a new request"
            )
        return jobs

    # --- one job in one transaction ------------------------------------------------------

    def _commit(
        self,
        location: dict[str, Any],
        staged: StagedFile | None,
        source_uri: str,
        filename: str,
        collection: str,
        metadata: Mapping[str, Any] | None,
        idempotency_key: str | None,
        priority: int,
        *,
        job_id: str | None = None,
    ) -> Job:
        with self.store.transaction() as tx:
            job = self._enqueue_in(
                tx,
                location,
                staged,
                source_uri,
                filename,
                collection,
                metadata,
                idempotency_key,
                priority,
                job_id=job_id,
            )
        if staged is not None and job.id != job_id:
            # The idempotency key matched an earlier job: these bytes are not needed.
            self.staging.discard(str(job_id))
        self.doorbell.ring(job.queue, job.id)
        return job

    def _enqueue_in(
        self,
        tx: Transaction,
        location: dict[str, Any],
        staged: StagedFile | None,
        source_uri: str,
        filename: str,
        collection: str,
        metadata: Mapping[str, Any] | None,
        idempotency_key: str | None,
        priority: int,
        *,
        job_id: str | None = None,
    ) -> Job:
        """Document row (queued) + job (+ staged-file record) in the caller's transaction."""
        check_priority(priority)
        meta = recorded_metadata(metadata, filename)  # ours: a user cannot replace it
        payload = {
            **location,
            "collection": collection,
            "source_uri": source_uri,
            "filename": filename,
            "metadata": dict(metadata or {}),
        }
        doc_id, is_new = tx.documents.ensure(
            collection=collection, source_uri=source_uri, metadata=meta
        )
        if staged is None and idempotency_key is None:
            # `ingest add` run again after an interrupted run: follow the job
            # still queued for this file rather than queue a second one.
            twin = tx.jobs.queued_twin(document_id=doc_id, kind=INGEST, payload=payload)
            if twin is not None:
                return twin
        job = tx.jobs.enqueue(
            NewJob(
                kind=INGEST,
                payload=payload,
                queue=Queue.INGEST,
                priority=priority,
                max_attempts=self.settings.max_attempts,
                idempotency_key=idempotency_key,
                document_id=doc_id,
            ),
            job_id=job_id,
            document_is_new=is_new,
        )
        if staged is not None and job.id == job_id:
            tx.staged_files.record(
                job_id=job.id, path=staged.relative, size=staged.size, sha256=staged.sha256
            )
        return job
