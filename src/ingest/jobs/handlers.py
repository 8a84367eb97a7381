"""What a job kind means: the handler registry's shape. The runtime knows no kinds
of its own beyond `noop`; the wiring (context.py) registers the application's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ingest.jobs.execution import JobExecution

NOOP = "noop"

# A handler runs one attempt: report progress and hit checkpoints through the
# execution; return the job's result, or record the outcome itself in a unit of
# work (execution.succeed_in / fail_in) together with what it wrote.
Handler = Callable[[JobExecution], Mapping[str, Any] | None]


def run_noop(execution: JobExecution) -> dict[str, Any]:
    execution.checkpoint()
    return {"ok": True}
