"""The ingest job: compute, then in one transaction check for a newer submission,
write the document, and record the job's outcome."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.ingestion.containers import ChildrenReport, Superseded, ingest_children
from ingest.jobs.execution import JobExecution
from ingest.jobs.progress import Progress
from ingest.pipeline.containers import is_container
from ingest.staging import Staging
from ingest.store import Store

if TYPE_CHECKING:  # the ingestor pulls in every parser library: built at the first job
    from ingest.ingestion.ingestor import Ingestor, Prepared

INGEST = "ingest"


class IngestHandler:
    """Runs `ingest` jobs: the payload names a file (staged or local) and where its
    document goes (collection, source URI, metadata)."""

    def __init__(
        self,
        store: Store,
        ingestor: Callable[[], Ingestor],
        *,
        staging: Staging,
        max_file_bytes: int,
    ) -> None:
        self.store = store
        self.ingestor = ingestor
        self.staging = staging
        self.max_file_bytes = max_file_bytes

    def __call__(self, execution: JobExecution) -> None:
        payload = execution.claim.job.payload
        execution.checkpoint()
        metadata = payload.get("metadata") or {}
        try:
            with (
                self._payload_file(payload) as path,
                _spill_dir(payload.get("filename") or path.name) as spill_dir,
            ):
                prepared = self.ingestor().prepare(
                    path,
                    collection=payload["collection"],
                    metadata=metadata,
                    source_uri=payload["source_uri"],
                    filename=payload.get("filename"),
                    on_progress=execution.progress,
                    spill_dir=spill_dir,
                )
                children = None
                if prepared.expansion is not None:
                    children = ingest_children(
                        self.store,
                        self.ingestor(),
                        prepared,
                        execution,
                        collection=payload["collection"],
                        metadata=metadata,
                    )
            self._commit(execution, prepared, children)
        except Superseded as superseded:
            self._skip_superseded(execution, superseded.newer_job_id)

    def _payload_file(self, payload: dict[str, Any]) -> AbstractContextManager[Path]:
        """The file a job reads: staged bytes (a local copy of an S3 object, checked
        against the size and SHA-256 recorded at upload) or a local path."""
        if "staged" not in payload:
            return nullcontext(Path(str(payload["path"])))
        size, sha256 = payload.get("staged_size"), payload.get("staged_sha256")
        return self.staging.fetch(
            str(payload["staged"]),
            max_bytes=self.max_file_bytes,
            size=size if isinstance(size, int) else None,
            sha256=sha256 if isinstance(sha256, str) else None,
        )

    def _commit(
        self, execution: JobExecution, prepared: Prepared, children: ChildrenReport | None
    ) -> None:
        result = prepared.result
        if result.outcome in ("added", "updated"):
            execution.progress(Progress("write", 0, 1, f"writing {result.chunks} chunks"))
        outcome = {k: v for k, v in asdict(result).items() if k != "reason"}
        if children is not None:
            outcome["children"] = children.as_dict()
        with self.store.transaction() as tx:
            # The document row first: on PostgreSQL its lock orders two writers.
            tx.documents.lock([result.document_id])
            prepared.write(tx)
            if children is not None:
                # Members gone from the container go with it (and theirs with them).
                outcome["children"]["removed"] = tx.documents.delete_children_except(
                    result.document_id, children.document_ids
                )
            # Two submissions of one document can run at once on two workers: the
            # older must not overwrite what the newer wrote (raising rolls back).
            newer = tx.jobs.newer_jobs(execution.claim.job) if result.outcome != "skipped" else None
            if newer and (superseding := newer.outcome()):
                raise Superseded(superseding)
            if result.outcome == "failed":
                execution.fail_in(
                    tx,
                    error_type="rejected",
                    message=result.reason or "the document was rejected",
                    result=outcome,
                )
            else:
                # A new version was written `ready` above: when no newer submission
                # exists, that is already what the document's status rule says.
                settled = result.outcome in ("added", "updated") and not newer
                execution.succeed_in(
                    tx, outcome, document_id=result.document_id, document_settled=settled
                )

    def _skip_superseded(self, execution: JobExecution, newer_job_id: str) -> None:
        job = execution.claim.job
        # Nothing of this attempt was written: for `ingest add`, a skipped file.
        result = {
            "source": job.payload["source_uri"],
            "outcome": "skipped",
            "document_id": job.document_id,
            "chunks": 0,
            "embedded": 0,
            "superseded_by": newer_job_id,
        }
        with self.store.transaction() as tx:
            if job.document_id is not None:
                tx.documents.lock([job.document_id])
            execution.succeed_in(tx, result, document_id=job.document_id)


def _spill_dir(filename: str) -> AbstractContextManager[Path | None]:
    """Where a container's members are spilled while they are ingested; other files
    get none (a directory made and removed per job cost ~1 ms of a small document's
    CPU)."""
    if not is_container(filename):
        return nullcontext(None)
    return _temporary_dir()


@contextmanager
def _temporary_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ingest-members-") as spill_dir:
        yield Path(spill_dir)
