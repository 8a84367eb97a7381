"""The one job object every interface shows: CLI --json and the HTTP API alike.
Its shape is `ingest.models.JobOut`; this is the plain-JSON view of it."""

from __future__ import annotations

from typing import Any

from ingest.models import JobOut, iso
from ingest.store import Job

__all__ = ["iso", "job_view"]


def job_view(job: Job, *, include_traceback: bool = False) -> dict[str, Any]:
    return JobOut.from_job(job, include_traceback=include_traceback).model_dump(mode="json")
