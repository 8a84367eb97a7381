"""`ingest add` queues its files in batches, one transaction per batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.context import Context
from ingest.ingestion import submit
from ingest.vocabulary import JobStatus


def _files(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"doc{i}.txt"
        path.write_text(f"document number {i}\n", encoding="utf-8")
        paths.append(path)
    return paths


def test_files_queued_across_batches_each_get_one_job_and_a_queued_document(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submit, "SUBMIT_BATCH", 2)
    paths = _files(tmp_path / "docs", 5)

    jobs = ctx.submitter.submit_paths(paths, collection="default", stage=False)

    assert [j.payload["filename"] for j in jobs] == [p.name for p in paths]
    assert len({j.id for j in jobs}) == 5
    assert all(j.status == JobStatus.QUEUED for j in jobs)
    for job in jobs:
        document = ctx.store.get_document(str(job.document_id))
        assert document is not None
        assert document.status == "queued"

    # Queued again before a worker ran them (an interrupted run, re-run): the same
    # jobs are followed, none is queued twice.
    again = ctx.submitter.submit_paths(paths, collection="default", stage=False)
    assert [j.id for j in again] == [j.id for j in jobs]
