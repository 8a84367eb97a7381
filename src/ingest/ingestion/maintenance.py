"""Periodic maintenance, run as ordinary ledger jobs on the "maintenance" queue."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ingest.jobs.execution import JobExecution
from ingest.jobs.handlers import Handler
from ingest.settings import Settings
from ingest.staging import Staging
from ingest.store import Store

CLEANUP_STAGED = "maintenance.cleanup_staged"
PURGE_JOBS = "maintenance.purge_jobs"
ORPHANS = "maintenance.orphans"
INTEGRITY = "maintenance.integrity"
TASKS = (CLEANUP_STAGED, PURGE_JOBS, ORPHANS, INTEGRITY)


class Maintenance:
    def __init__(
        self, store: Store, settings: Settings, model_id: Callable[[], str], staging: Staging
    ) -> None:
        self.store = store
        self.settings = settings
        self.staging = staging
        # The embedding model the integrity check looks for vectors of.
        self.model_id = model_id

    def handlers(self) -> dict[str, Handler]:
        return {
            CLEANUP_STAGED: self.cleanup_staged,
            PURGE_JOBS: self.purge_jobs,
            ORPHANS: self.remove_orphans,
            INTEGRITY: self.integrity_check,
        }

    def cleanup_staged(self, execution: JobExecution) -> dict[str, Any]:
        """Delete staged uploads whose job succeeded, and the rest (failed, dead, cancelled,
        abandoned) once past the upload retention, so a retry still finds its file.
        Then the orphans: bytes staged for a job that was never committed (a crash
        between the upload's PUT and its transaction), once past the same retention."""
        older_than = time.time() - self.settings.upload_retention.total_seconds()
        removable = self.store.staged_files.to_remove(older_than)
        removed_ids: list[int] = []
        try:
            for staged_id, location in removable:
                execution.checkpoint()
                self.staging.remove(location)
                removed_ids.append(staged_id)
        finally:
            # What was removed stays recorded even if the storage fails half-way.
            self.store.staged_files.mark_removed(removed_ids)
        return {"removed": len(removed_ids), "orphans_removed": self._sweep_orphans(older_than)}

    def _sweep_orphans(self, older_than: float) -> int:
        stale = [job_id for job_id, newest in self.staging.staged_jobs() if newest < older_than]
        known = self.store.staged_files.known_jobs(stale)
        orphans = [job_id for job_id in stale if job_id not in known]
        for job_id in orphans:
            self.staging.discard(job_id)
        return len(orphans)

    def purge_jobs(self, execution: JobExecution) -> dict[str, Any]:
        """Forget finished jobs older than INGEST_JOB_RETENTION, and long-gone workers."""
        older_than = time.time() - self.settings.job_retention.total_seconds()
        purged = self.store.jobs.purge_finished(older_than)
        pruned = self.store.workers.prune(older_than)
        return {"jobs_purged": purged, "workers_pruned": pruned}

    def remove_orphans(self, execution: JobExecution) -> dict[str, Any]:
        grace = self.settings.job_hard_timeout_seconds
        return self.store.remove_orphans(vectors_older_than=time.time() - grace)

    def integrity_check(self, execution: JobExecution) -> dict[str, Any]:
        """Documents without chunks, chunks without vectors, staged files that vanished."""
        report = self.store.integrity_report(self.model_id())
        missing = [
            {"job_id": job_id, "path": location}
            for job_id, location in self.store.staged_files.live()
            if not self.staging.exists(location)
        ]
        report["staged_files_missing"] = len(missing)
        report["staged_files_missing_sample"] = missing[:20]
        report["ok"] = not (
            report["documents_without_chunks"] or report["chunks_without_vectors"] or missing
        )
        report["checked_at"] = time.time()
        return report
