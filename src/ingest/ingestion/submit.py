"""Submitting ingestion jobs: stage the bytes, then commit document row + job (+ staged
file record) in one transaction, then ring the doorbell."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ingest.errors import FileTooLarge, InvalidRequest
from ingest.ingestion.handlers import INGEST
from ingest.jobs.doorbell import Doorbell
from ingest.settings import Settings
from ingest.store import Job, NewJob, Store, new_job_id
from ingest.vocabulary import MAX_PRIORITY, MIN_PRIORITY, Queue

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def check_priority(priority: int) -> int:
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise InvalidRequest(
            f"priority {priority} is out of range: {MIN_PRIORITY}..{MAX_PRIORITY} "
            "(higher runs first)"
        )
    return priority


def sanitize_filename(name: str) -> str:
    """A client's filename made safe to use as one path component."""
    base = unicodedata.normalize("NFKC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip(" .")
    return (base or "upload")[:200]


@dataclass(frozen=True, slots=True)
class StagedFile:
    relative: str
    size: int
    sha256: str


def stage_stream(
    stream: IO[bytes], incoming_dir: Path, job_id: str, filename: str, *, max_bytes: int
) -> StagedFile:
    """Copy a stream into INGEST_INCOMING_DIR/<job id>/<safe name>, bounded, fsync'd."""
    folder = incoming_dir.resolve() / job_id
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / sanitize_filename(filename)
    digest = hashlib.sha256()
    size = 0
    try:
        with target.open("wb") as out:
            while block := stream.read(1 << 20):
                size += len(block)
                if size > max_bytes:
                    raise FileTooLarge(
                        f"upload exceeds the limit of {max_bytes:,} bytes (INGEST_MAX_UPLOAD_BYTES)"
                    )
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        _fsync_dir(folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return StagedFile(f"{job_id}/{target.name}", size, digest.hexdigest())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Submitter:
    """The one way work gets into the ledger: the API, the CLI and (later) synced
    sources all submit through here."""

    def __init__(self, store: Store, settings: Settings, doorbell: Doorbell) -> None:
        self.store = store
        self.settings = settings
        self.doorbell = doorbell

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
        """Queue one local file. With `stage`, its bytes are copied into the shared
        incoming folder first, so a worker on another machine can read them."""
        source = str(path.resolve())
        if not stage:
            payload: dict[str, Any] = {"path": source}
            return self._commit(
                payload, None, source, path.name, collection, metadata, idempotency_key, priority
            )
        job_id = new_job_id()
        with path.open("rb") as stream:
            staged = stage_stream(
                stream,
                self.settings.incoming_dir,
                job_id,
                path.name,
                max_bytes=self.settings.max_file_bytes,
            )
        return self._commit(
            {"staged": staged.relative},
            staged,
            source,
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
        client's file, so maintenance never deletes it (no staged-file record)."""
        root = self.settings.incoming_dir.resolve()
        relative = path.resolve().relative_to(root).as_posix()
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

    def submit_staged(
        self,
        staged: StagedFile,
        *,
        job_id: str,
        source_uri: str,
        filename: str,
        collection: str,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        priority: int = 0,
    ) -> Job:
        return self._commit(
            {"staged": staged.relative},
            staged,
            source_uri,
            filename,
            collection,
            metadata,
            idempotency_key,
            priority,
            job_id=job_id,
        )

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
        check_priority(priority)
        meta = {"filename": filename, **(metadata or {})}
        payload = {
            **location,
            "collection": collection,
            "source_uri": source_uri,
            "filename": filename,
            "metadata": dict(metadata or {}),
        }
        with self.store.transaction() as tx:
            doc_id = tx.documents.ensure(
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
            )
            if staged is not None and job.id == job_id:
                tx.staged_files.record(
                    job_id=job.id,
                    path=staged.relative,
                    size=staged.size,
                    sha256=staged.sha256,
                )
        if staged is not None and job.id != job_id:
            # The idempotency key matched an earlier job: these bytes are not needed.
            shutil.rmtree(self.settings.incoming_dir.resolve() / str(job_id), ignore_errors=True)
        self.doorbell.ring(job.queue, job.id)
        return job
