"""Which files need a job: those whose bytes, pipeline or metadata changed since
their document was written. `ingest add` and synced folders plan the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.store import document_id_for
from ingest.vocabulary import DocumentStatus

if TYPE_CHECKING:  # the ingestor pulls in every parser library
    from ingest.ingestion.ingestor import Ingestor
    from ingest.store import DocumentRecord


@dataclass
class IngestionPlan:
    all_files: list[Path]
    to_submit: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    # {"source", "reason"} of files rejected before and unchanged since.
    known_failures: list[dict[str, str]] = field(default_factory=list)


def plan_files(
    ingestor: Ingestor,
    files: Sequence[Path],
    *,
    collection: str,
    metadata: Mapping[str, Any],
    known: Mapping[str, DocumentRecord] | None = None,
) -> IngestionPlan:
    """Files whose bytes, pipeline and metadata match what is recorded need no job:
    skipped when indexed, a known failure when rejected for good before. `known`: the
    collection's documents by source URI, read once (else those of `files`, read
    together)."""
    plan = IngestionPlan(all_files=list(files))
    if known is None:
        known = _recorded(ingestor, plan.all_files, collection)
    for path in plan.all_files:
        record = ingestor.unchanged_record(
            path, collection=collection, metadata=metadata, known=known
        )
        if record is None:
            plan.to_submit.append(path)
        elif record.status == DocumentStatus.FAILED:
            reason = record.error or "rejected"
            plan.known_failures.append({"source": record.source_uri, "reason": reason})
        else:
            plan.skipped.append(path)
    return plan


def _recorded(
    ingestor: Ingestor, files: Sequence[Path], collection: str
) -> dict[str, DocumentRecord]:
    """The documents already recorded for `files`, by source URI, in one read."""
    ids = [document_id_for(collection, str(path.resolve())) for path in files]
    return {record.source_uri: record for record in ingestor.store.get_documents(ids).values()}
