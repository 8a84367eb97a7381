"""A container's members as child documents: each ingested like a file of its own
(its own status, failure reason and transaction), by the container's job.

A member's source is its container's joined by "!/" (`/d/a.zip!/dir/x.txt`), so a
member unchanged since the last time (same bytes under the same source) is a
skip, nothing embedded. The container's own write, in the job's transaction,
then deletes the children no longer in it (handlers.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.jobs.execution import JobExecution
from ingest.jobs.progress import Progress
from ingest.pipeline.containers import SEPARATOR
from ingest.pipeline.filenames import recorded_metadata
from ingest.store import Store

if TYPE_CHECKING:
    from ingest.ingestion.ingestor import Ingestor, Prepared
    from ingest.ingestion.results import FileResult

# The job's result lists at most this many skipped or failed members by name.
_LISTED = 100


class Superseded(Exception):
    """A newer submission of this document exists: this job must not write over
    what it writes (raised to roll back, or to stop writing children)."""

    def __init__(self, newer_job_id: str) -> None:
        super().__init__(newer_job_id)
        self.newer_job_id = newer_job_id


@dataclass(slots=True)
class ChildrenReport:
    """What became of a container's members: counts, and the ones a user will ask about."""

    document_ids: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"added": 0, "updated": 0, "skipped": 0, "failed": 0}
    )
    failed: list[dict[str, str]] = field(default_factory=list)
    not_documents: list[dict[str, str]] = field(default_factory=list)

    def record(self, result: FileResult) -> None:
        self.document_ids.append(result.document_id)
        self.counts[result.outcome] += 1
        if result.outcome == "failed" and len(self.failed) < _LISTED:
            self.failed.append({"source": result.source, "reason": result.reason or ""})

    def as_dict(self) -> dict[str, Any]:
        return {**self.counts, "failed_members": self.failed, "skipped_members": self.not_documents}


def ingest_children(
    store: Store,
    ingestor: Ingestor,
    container: Prepared,
    execution: JobExecution,
    *,
    collection: str,
    metadata: Mapping[str, Any],
) -> ChildrenReport:
    """Ingest and write each member of `container` (already expanded) in its own
    transaction, parents before their children.

    Raises Superseded once a newer submission of the container is queued or done:
    its children are the newer job's to write, older bytes must not overwrite them."""
    expansion = container.expansion
    assert expansion is not None
    report = ChildrenReport()
    report.not_documents = [
        {"name": s.name, "reason": s.reason} for s in expansion.skipped[:_LISTED]
    ]
    top = container.result
    ids: dict[str | None, str] = {None: top.document_id}
    total = len(expansion.members)
    for number, member in enumerate(expansion.members, start=1):
        execution.checkpoint()
        execution.progress(Progress("members", number - 1, total, f"member {number}/{total}"))
        source = f"{top.source}{SEPARATOR}{member.name}"
        filename = member.name.rsplit(SEPARATOR, 1)[-1].rsplit("/", 1)[-1]
        meta = recorded_metadata(metadata, filename)
        parent_id = ids.get(member.parent, top.document_id)
        if member.error is not None or member.path is None:
            prepared = ingestor.reject_member(
                collection=collection,
                source_uri=source,
                metadata=meta,
                reason=member.error or "the member could not be extracted",
                parent_id=parent_id,
            )
        else:
            prepared = ingestor.prepare(
                Path(member.path),
                collection=collection,
                metadata=metadata,
                source_uri=source,
                filename=filename,
                parent_id=parent_id,
            )
        with store.transaction() as tx:
            tx.documents.lock([top.document_id, prepared.result.document_id])
            if newer := tx.jobs.newer_jobs(execution.claim.job).outcome(or_pending=True):
                raise Superseded(newer)
            prepared.write(tx)
        ids[member.name] = prepared.result.document_id
        report.record(prepared.result)
    execution.progress(Progress("members", total, total, f"{total} members ingested"))
    return report
