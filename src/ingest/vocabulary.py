"""The words every layer shares: job and document statuses, queue names, priorities.

`StrEnum` members are their strings, so they go into SQL, JSON and logs as they
are, and a status read back from the database compares equal to its member.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """queued -> running -> succeeded | failed | cancelled; running -> queued (lease
    expired or a retryable error); running -> dead after the last attempt."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEAD = "dead"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_retryable(self) -> bool:
        """An explicit retry re-queues only what ended without success."""
        return self in RETRYABLE


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DEAD})
ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED})
# A job that wrote its document's outcome (newest submission wins among these).
WROTE_OUTCOME = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD})


# The error type of a job whose input was refused (bad input: never retried).
REJECTED = "rejected"


class DocumentStatus(StrEnum):
    QUEUED = "queued"
    READY = "ready"
    FAILED = "failed"


class Queue(StrEnum):
    INGEST = "ingest"
    MAINTENANCE = "maintenance"
    SOURCES = "sources"  # syncs of synced sources: list, then submit to INGEST


# A job's priority: higher runs first; jobs of equal priority run oldest first.
MIN_PRIORITY = -100
MAX_PRIORITY = 100
