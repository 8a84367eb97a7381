"""Staged uploads: bytes a job needs, kept in staging (the incoming folder or the S3
bucket) until it is done. `path` is the staged location."""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.store.engine import read_transaction, write_transaction
from ingest.store.schema import jobs, staged_files
from ingest.vocabulary import ACTIVE, JobStatus


class StagedFileWriter:
    """Inside a transaction: record the bytes a job being enqueued will read."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def record(self, *, job_id: str, path: str, size: int, sha256: str) -> None:
        self._conn.execute(
            staged_files.insert().values(
                job_id=job_id, path=path, size_bytes=size, sha256=sha256, created_at=time.time()
            )
        )


class StagedFiles:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def to_remove(self, older_than: float) -> list[tuple[int, str]]:
        """Staged files whose job succeeded, or that are older than the upload retention
        while their job is gone or can only be retried by hand (failed, dead, cancelled:
        `retry` re-runs the job on these very bytes, so they must outlive its failure)."""
        succeeded = sa.select(jobs.c.id).where(jobs.c.status == JobStatus.SUCCEEDED)
        active = sa.select(jobs.c.id).where(jobs.c.status.in_(list(ACTIVE)))
        stmt = sa.select(staged_files.c.id, staged_files.c.path).where(
            staged_files.c.removed_at.is_(None),
            sa.or_(
                staged_files.c.job_id.in_(succeeded),
                sa.and_(
                    staged_files.c.created_at < older_than,
                    staged_files.c.job_id.not_in(active),
                ),
            ),
        )
        with read_transaction(self.engine) as conn:
            return [(r.id, r.path) for r in conn.execute(stmt)]

    def mark_removed(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.update(staged_files)
                .where(staged_files.c.id.in_(list(ids)))
                .values(removed_at=time.time())
            )

    def known_jobs(self, job_ids: Sequence[str]) -> set[str]:
        """Those of `job_ids` that a job row or a staged-file record still names: bytes
        under any other id belong to no job (the orphan sweep's test)."""
        known: set[str] = set()
        with read_transaction(self.engine) as conn:
            for start in range(0, len(job_ids), 500):  # bounded IN lists
                batch = list(job_ids[start : start + 500])
                known.update(conn.scalars(sa.select(jobs.c.id).where(jobs.c.id.in_(batch))))
                known.update(
                    conn.scalars(
                        sa.select(staged_files.c.job_id).where(
                            staged_files.c.job_id.in_(batch), staged_files.c.removed_at.is_(None)
                        )
                    )
                )
        return known

    def live(self) -> list[tuple[str, str]]:
        """(job id, path) of staged files that active jobs still need."""
        stmt = (
            sa.select(staged_files.c.job_id, staged_files.c.path)
            .join(jobs, jobs.c.id == staged_files.c.job_id)
            .where(staged_files.c.removed_at.is_(None), jobs.c.status.in_(list(ACTIVE)))
        )
        with read_transaction(self.engine) as conn:
            return [(r.job_id, r.path) for r in conn.execute(stmt)]
