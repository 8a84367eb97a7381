"""Pure decisions of the job state machine: what a failure leads to, and when to retry.

queued -> running -> succeeded | failed | cancelled
running -> queued   (lease expired, or a transient error with attempts left)
running -> dead     (transient error on the last attempt; re-queueable by hand)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ingest.errors import DocumentRejected, JobCancelled, JobTimedOut
from ingest.vocabulary import JobStatus


@dataclass(frozen=True, slots=True)
class FailureDecision:
    status: JobStatus
    error_type: str
    retry_in: float | None = None


def retry_delay(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with jitter: base * 2^(attempt-1), capped, scaled by [0.5, 1)."""
    ceiling = min(cap, base * math.pow(2, max(0, attempt - 1)))
    jitter = rng.random() if rng else random.random()
    return ceiling * (0.5 + jitter / 2)


def decide_failure(
    exc: BaseException, *, attempt: int, max_attempts: int, base: float, cap: float
) -> FailureDecision:
    if isinstance(exc, JobCancelled):
        return FailureDecision(JobStatus.CANCELLED, "cancelled")
    if isinstance(exc, JobTimedOut):
        return FailureDecision(JobStatus.FAILED, "timeout")
    if isinstance(exc, DocumentRejected):
        return FailureDecision(JobStatus.FAILED, "rejected")
    error_type = error_type_of(exc)
    if attempt >= max_attempts:
        return FailureDecision(JobStatus.DEAD, error_type)
    return FailureDecision(JobStatus.QUEUED, error_type, retry_delay(attempt, base=base, cap=cap))


def error_type_of(exc: BaseException) -> str:
    """A short stable name for metrics and the API: embedding_error, memory, ..."""
    if isinstance(exc, MemoryError):
        return "memory"
    name = type(exc).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
