"""Synced sources on both backends: a folder synced as ledger jobs (list, submit
what changed by content hash, delete what is gone), its report on the source row,
and the scheduler's one sync per period however many replicas tick."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingest.context import Context
from ingest.errors import NotFound, SourceExists
from ingest.ingestion import sources
from ingest.jobs.scheduler import Scheduler
from ingest.store import Job, Store
from ingest.store.schema import source_objects
from ingest.store.sources import RememberedObject
from ingest.vocabulary import DocumentStatus, JobStatus
from tests.conftest import CountingEmbedder
from tests.support.sources import run_sync
from tests.support.store_checks import duplicate_chunk_count

TEXTS = {
    "keys.txt": "Rotating the signing keys happens every ninety days through the vault console.",
    "backups.txt": "Backups of the ledger database are copied to cold storage every night.",
    "onboarding.md": "# Onboarding\n\nThe checklist covers laptops, badges and payroll access.",
}


def _folder(root: Path, files: dict[str, str] = TEXTS) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _add(ctx: Context, location: Path | str, **options: object) -> str:
    source, job = sources.add_source(
        ctx.store, ctx.settings, ctx.doorbell, str(location), collection="team", **options
    )
    assert job.kind == sources.SYNC
    return source.id


def _documents(ctx: Context) -> dict[str, DocumentStatus]:
    return {Path(d.source_uri).name: d.status for d in ctx.store.documents_in("team")}


def test_add_list_show_remove(ctx: Context, tmp_path: Path) -> None:
    source_id = _add(ctx, tmp_path / "docs", every="15m", include=["*.md"], exclude=["draft*"])
    [listed] = ctx.store.sources.list()
    assert listed.id == source_id
    assert listed.location == str((tmp_path / "docs").resolve())
    assert (listed.interval_seconds, listed.include, listed.exclude) == (900, ["*.md"], ["draft*"])
    assert sources.get_source(ctx.store, source_id).collection == "team"
    with pytest.raises(SourceExists):
        _add(ctx, tmp_path / "docs")
    sources.remove_source(ctx.store, source_id)
    assert ctx.store.sources.list() == []
    with pytest.raises(NotFound):
        sources.remove_source(ctx.store, source_id)


def test_sync_submits_new_files_then_nothing_when_unchanged(
    ctx: Context, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    source_id = _add(ctx, _folder(tmp_path / "docs"))
    first = run_sync(ctx)
    assert first.status == JobStatus.SUCCEEDED, first.error_message
    assert first.result is not None
    assert {k: first.result[k] for k in ("listed", "submitted", "unchanged", "deleted")} == {
        "listed": 3,
        "submitted": 3,
        "unchanged": 0,
        "deleted": 0,
    }
    assert _documents(ctx) == dict.fromkeys(TEXTS, DocumentStatus.READY)
    assert embedder.texts_embedded > 0

    embedder.texts_embedded = 0
    again = run_sync(ctx, source_id)
    assert again.result is not None
    assert (again.result["submitted"], again.result["unchanged"]) == (0, 3)
    assert embedder.texts_embedded == 0
    row = sources.get_source(ctx.store, source_id)
    assert row.last_sync_job_id == again.id
    assert row.last_sync_status == "succeeded"
    assert row.last_sync_report is not None
    assert row.last_sync_report["unchanged"] == 3
    assert row.last_sync_started_at is not None
    assert row.last_sync_finished_at is not None
    assert row.last_sync_started_at <= row.last_sync_finished_at


def test_changed_deleted_and_renamed_files(
    ctx: Context, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    folder = _folder(tmp_path / "docs")
    source_id = _add(ctx, folder)
    run_sync(ctx)
    before = {d.source_uri: d for d in ctx.store.documents_in("team")}

    (folder / "keys.txt").write_text("The signing keys now rotate every thirty days instead.")
    (folder / "backups.txt").unlink()
    (folder / "onboarding.md").rename(folder / "welcome.md")
    embedder.texts_embedded = 0
    job = run_sync(ctx, source_id)

    assert job.result is not None
    assert {k: job.result[k] for k in ("listed", "submitted", "unchanged", "deleted")} == {
        "listed": 2,
        "submitted": 2,  # the changed file and the renamed one
        "unchanged": 0,
        "deleted": 2,  # the deleted file and the renamed one's old name
    }
    assert _documents(ctx) == {
        "keys.txt": DocumentStatus.READY,
        "welcome.md": DocumentStatus.READY,
    }
    keys = ctx.store.documents_in("team")
    changed = next(d for d in keys if d.source_uri.endswith("keys.txt"))
    assert changed.content_hash != before[changed.source_uri].content_hash
    # The renamed file's text was embedded before: only the changed file embeds.
    assert embedder.texts_embedded == 1
    assert duplicate_chunk_count(ctx.store) == 0
    total_chunks = sum(d.chunk_count for d in ctx.store.documents_in("team"))
    assert total_chunks == len(ctx.store.chunks_of(changed.id)) + 1


def test_unlistable_folder_fails_the_sync_and_keeps_documents(ctx: Context, tmp_path: Path) -> None:
    folder = _folder(tmp_path / "docs")
    source_id = _add(ctx, folder)
    run_sync(ctx)
    shutil.rmtree(folder)

    job = run_sync(ctx, source_id)
    assert job.status == JobStatus.FAILED
    assert job.error_message is not None
    assert "no such folder" in job.error_message
    assert job.attempt == 1  # not retried: the next period tries again
    assert _documents(ctx) == dict.fromkeys(TEXTS, DocumentStatus.READY)
    row = sources.get_source(ctx.store, source_id)
    assert row.last_sync_status == "failed"
    assert row.last_sync_error == job.error_message


def test_include_and_exclude_globs(ctx: Context, tmp_path: Path) -> None:
    files = {
        "notes/a.md": "# A\n\nThe first note is about rotating the signing keys.",
        "notes/draft-b.md": "# Draft\n\nA draft about backups that is not ready yet.",
        "c.txt": "Plain text about onboarding, not a markdown file.",
        "deep/er/d.md": "# D\n\nA nested note about the payroll system.",
    }
    folder = _folder(tmp_path / "docs", files)
    source_id = _add(ctx, folder, include=["*.md"], exclude=["draft-*"])
    job = run_sync(ctx)
    assert job.result is not None
    assert (job.result["listed"], job.result["submitted"]) == (2, 2)
    assert set(_documents(ctx)) == {"a.md", "d.md"}
    # A document outside the globs (added by hand) is not the source's to delete.
    ctx.store.sources.remove(source_id)
    other = _add(ctx, folder, include=["*.txt"])
    run_sync(ctx)
    assert set(_documents(ctx)) == {"a.md", "d.md", "c.txt"}
    assert sources.get_source(ctx.store, other).last_sync_report is not None


def test_two_scheduler_replicas_enqueue_one_sync_per_period(ctx: Context, tmp_path: Path) -> None:
    source_id = _add(ctx, _folder(tmp_path / "docs"), every="15m")
    replicas = [Scheduler(ctx.runtime), Scheduler(ctx.runtime)]
    now = time.time()
    for replica in replicas:
        replica.tick(now)
        replica.tick(now + 1)

    def syncs() -> list[Job]:
        return ctx.ledger.list_jobs(kind=sources.SYNC, limit=100)

    # add_source queued this period's sync: the replicas found it.
    assert len(syncs()) == 1
    later = now + 900
    for replica in replicas:
        replica.tick(later)
    assert len(syncs()) == 2
    assert {j.payload["source_id"] for j in syncs()} == {source_id}
    # A removed source is no longer scheduled.
    sources.remove_source(ctx.store, source_id)
    for replica in replicas:
        replica.tick(later + 900)
    assert len(syncs()) == 2


def test_remembered_objects_are_replaced_forgotten_and_go_with_their_source(
    database_url: str,
) -> None:
    store = Store.open(database_url)
    try:
        store.migrate()
        source = store.sources.add(
            location="s3://b/p", collection="team", interval_seconds=60, include=[], exclude=[]
        )
        many = {f"s3://b/p/{i}.txt": RememberedObject(f'"e{i}"|5|t', "h" * 64) for i in range(1200)}
        store.sources.remember(source.id, many)
        changed = RememberedObject('"new"|6|u', "0" * 64)
        store.sources.remember(source.id, {"s3://b/p/0.txt": changed})
        remembered = store.sources.objects(source.id)
        assert len(remembered) == 1200
        assert remembered["s3://b/p/0.txt"] == changed
        store.sources.forget(source.id, [f"s3://b/p/{i}.txt" for i in range(600)])
        assert len(store.sources.objects(source.id)) == 600
        assert store.sources.remove(source.id)
        assert store.sources.objects(source.id) == {}
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(sa.func.count()).select_from(source_objects))
            assert rows.scalar() == 0
    finally:
        store.close()
