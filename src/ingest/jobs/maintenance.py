"""Periodic maintenance, run as ordinary ledger jobs on the "maintenance" queue."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.jobs.execution import JobExecution
from ingest.jobs.ingestion import ParseFunction

if TYPE_CHECKING:
    from ingest.context import Context
    from ingest.jobs.handlers import Handler

CLEANUP_STAGED = "maintenance.cleanup_staged"
PURGE_JOBS = "maintenance.purge_jobs"
ORPHANS = "maintenance.orphans"
INTEGRITY = "maintenance.integrity"
TASKS = (CLEANUP_STAGED, PURGE_JOBS, ORPHANS, INTEGRITY)


def cleanup_staged(
    services: Context, execution: JobExecution, parse: ParseFunction | None
) -> dict[str, Any]:
    """Delete staged uploads whose job succeeded, and the rest (failed, dead, cancelled,
    abandoned) once past the upload retention, so a retry still finds its file."""
    root = services.settings.incoming_dir.resolve()
    older_than = time.time() - services.settings.upload_retention.total_seconds()
    removable = services.ledger.staged_files_to_remove(older_than)
    removed_ids: list[int] = []
    for staged_id, relative in removable:
        execution.checkpoint()
        path = (root / relative).resolve()
        if root in path.parents:
            path.unlink(missing_ok=True)
            _remove_empty_parent(path.parent, root)
        removed_ids.append(staged_id)
    services.ledger.mark_staged_removed(removed_ids)
    return {"removed": len(removed_ids)}


def _remove_empty_parent(folder: Path, root: Path) -> None:
    if folder == root or root not in folder.parents:
        return
    try:
        empty = not any(folder.iterdir())
    except FileNotFoundError:  # already gone (another cleanup, a discarded duplicate)
        return
    if empty:
        shutil.rmtree(folder, ignore_errors=True)


def purge_jobs(
    services: Context, execution: JobExecution, parse: ParseFunction | None
) -> dict[str, Any]:
    """Forget finished jobs older than INGEST_JOB_RETENTION, and long-gone workers."""
    s = services.settings
    purged = services.ledger.purge_finished(time.time() - s.job_retention.total_seconds())
    pruned = services.ledger.prune_workers(time.time() - s.job_retention.total_seconds())
    return {"jobs_purged": purged, "workers_pruned": pruned}


def remove_orphans(
    services: Context, execution: JobExecution, parse: ParseFunction | None
) -> dict[str, Any]:
    grace = timedelta(seconds=services.settings.job_hard_timeout_seconds)
    return services.store.remove_orphans(vectors_older_than=datetime.now(UTC) - grace)


def integrity_check(
    services: Context, execution: JobExecution, parse: ParseFunction | None
) -> dict[str, Any]:
    """Documents without chunks, chunks without vectors, staged files that vanished."""
    report = services.store.integrity_report(services.embedder.model_id)
    root = services.settings.incoming_dir.resolve()
    missing = [
        {"job_id": job_id, "path": relative}
        for job_id, relative in services.ledger.live_staged_files()
        if not (root / relative).exists()
    ]
    report["staged_files_missing"] = len(missing)
    report["staged_files_missing_sample"] = missing[:20]
    report["ok"] = not (
        report["documents_without_chunks"] or report["chunks_without_vectors"] or missing
    )
    report["checked_at"] = time.time()
    return report


HANDLERS: dict[str, Handler] = {
    CLEANUP_STAGED: cleanup_staged,
    PURGE_JOBS: purge_jobs,
    ORPHANS: remove_orphans,
    INTEGRITY: integrity_check,
}
