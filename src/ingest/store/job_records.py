"""The job ledger's values: a job as read, a job to insert, a claim on one attempt."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ingest.vocabulary import ACTIVE, WROTE_OUTCOME, JobStatus, Queue


@dataclass(frozen=True, slots=True)
class NewJob:
    kind: str
    payload: dict[str, Any]
    queue: str = Queue.INGEST
    priority: int = 0
    max_attempts: int = 3
    idempotency_key: str | None = None
    document_id: str | None = None
    not_before: float | None = None


@dataclass(frozen=True, slots=True)
class NewerJobs:
    """The jobs of one document (and kind) submitted after a given job, oldest
    first, as (id, status): almost always none."""

    jobs: tuple[tuple[str, JobStatus], ...] = ()

    def outcome(self, *, or_pending: bool = False) -> str | None:
        """The id of one that has already written its outcome (succeeded, failed or
        dead), if any; with `or_pending`, also one still queued or running."""
        wanted = WROTE_OUTCOME | ACTIVE if or_pending else WROTE_OUTCOME
        return next((job_id for job_id, status in self.jobs if status in wanted), None)

    def __bool__(self) -> bool:
        return bool(self.jobs)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    queue: str
    priority: int
    status: JobStatus
    attempt: int
    max_attempts: int
    not_before: float
    lease_owner: str | None
    lease_expires_at: float | None
    progress: float
    progress_current: int
    progress_total: int
    progress_message: str | None
    stage: str | None
    stages: list[dict[str, Any]]
    payload: dict[str, Any]
    result: dict[str, Any] | None
    error_type: str | None
    error_message: str | None
    error_traceback: str | None
    cancel_requested: bool
    idempotency_key: str | None
    document_id: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal


@dataclass(frozen=True, slots=True)
class Claim:
    """What a worker holds while it runs one attempt of a job."""

    job: Job
    owner: str

    @property
    def attempt(self) -> int:
        return self.job.attempt


def new_job_id() -> str:
    return uuid.uuid4().hex


def to_job(row: sa.Row[Any]) -> Job:
    m = row._mapping
    values = {f: m[f] for f in Job.__dataclass_fields__}
    values["status"] = JobStatus(values["status"])
    return Job(**values)
