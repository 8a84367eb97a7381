"""s3:// sources against a real S3-compatible server (moto's, over HTTP): objects
listed with boto3, read (bounded), submitted like uploads when new or changed,
their documents deleted when the object is gone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa

from ingest.context import Context
from ingest.ingestion import sources
from ingest.ingestion.source_listing import S3Listing
from ingest.settings import Settings
from ingest.store.schema import chunks, source_objects
from ingest.store.sources import SourceRecord
from ingest.vocabulary import DocumentStatus, JobStatus
from tests.conftest import CountingEmbedder
from tests.support.s3 import S3Server
from tests.support.sources import run_sync
from tests.support.store_checks import duplicate_chunk_count

BUCKET = "team-docs"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    s3_server.reset()
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url)
    client.create_bucket(Bucket=BUCKET)
    yield client
    client.close()


@pytest.fixture
def s3_ctx(
    tmp_path: Path, s3_server: S3Server, embedder: CountingEmbedder, s3: Any
) -> Iterator[Context]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ingest.db'}",
        incoming_dir=tmp_path / "incoming",
        isolate_parsing=False,
        s3_endpoint_url=s3_server.endpoint_url,
        max_upload_bytes=10_000,
    )
    context = Context(settings, embedder=embedder)
    yield context
    context.close()


def _put(s3: Any, key: str, text: str | bytes) -> None:
    body = text.encode() if isinstance(text, str) else text
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def _documents(ctx: Context) -> dict[str, DocumentStatus]:
    return {d.source_uri: d.status for d in ctx.store.documents_in("team")}


def test_s3_prefix_syncs_new_unchanged_changed_and_deleted_objects(
    s3_ctx: Context, s3: Any, embedder: CountingEmbedder
) -> None:
    _put(s3, "docs/keys.txt", "Rotating the signing keys happens every ninety days.")
    _put(s3, "docs/guides/backups.md", "# Backups\n\nBackups are copied to cold storage nightly.")
    _put(s3, "other/payroll.txt", "Outside the prefix: never listed.")
    source, _ = sources.add_source(
        s3_ctx.store, s3_ctx.settings, s3_ctx.doorbell, f"s3://{BUCKET}/docs/", collection="team"
    )
    first = run_sync(s3_ctx)
    assert first.status == JobStatus.SUCCEEDED, first.error_message
    assert first.result is not None
    assert (first.result["listed"], first.result["submitted"]) == (2, 2)
    assert _documents(s3_ctx) == {
        f"s3://{BUCKET}/docs/keys.txt": DocumentStatus.READY,
        f"s3://{BUCKET}/docs/guides/backups.md": DocumentStatus.READY,
    }
    [hit, *_] = s3_ctx.searcher.search("how often are signing keys rotated", k=1)
    assert hit.source == f"s3://{BUCKET}/docs/keys.txt"

    embedder.texts_embedded = 0
    again = run_sync(s3_ctx, source.id)
    assert again.result is not None
    assert (again.result["submitted"], again.result["unchanged"]) == (0, 2)
    assert embedder.texts_embedded == 0

    _put(s3, "docs/keys.txt", "The signing keys now rotate every thirty days.")
    s3.delete_object(Bucket=BUCKET, Key="docs/guides/backups.md")
    changed = run_sync(s3_ctx, source.id)
    assert changed.result is not None
    assert {k: changed.result[k] for k in ("listed", "submitted", "deleted")} == {
        "listed": 1,
        "submitted": 1,
        "deleted": 1,
    }
    assert list(_documents(s3_ctx)) == [f"s3://{BUCKET}/docs/keys.txt"]
    assert "thirty" in s3_ctx.store.chunks_of(s3_ctx.store.documents_in("team")[0].id)[0].text
    assert duplicate_chunk_count(s3_ctx.store) == 0


def test_object_over_the_upload_limit_fails_alone(s3_ctx: Context, s3: Any) -> None:
    _put(s3, "docs/small.txt", "A small note about the vault console.")
    _put(s3, "docs/huge.txt", b"x" * 20_000)  # over max_upload_bytes
    sources.add_source(
        s3_ctx.store, s3_ctx.settings, s3_ctx.doorbell, f"s3://{BUCKET}/docs", collection="team"
    )
    job = run_sync(s3_ctx)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result is not None
    assert (job.result["submitted"], job.result["failed"]) == (1, 1)
    [error] = job.result["errors"]
    assert error["source"] == f"s3://{BUCKET}/docs/huge.txt"
    assert "INGEST_MAX_UPLOAD_BYTES" in error["reason"]


def test_unreachable_bucket_fails_the_sync_and_keeps_documents(s3_ctx: Context, s3: Any) -> None:
    _put(s3, "docs/keys.txt", "Rotating the signing keys happens every ninety days.")
    source, _ = sources.add_source(
        s3_ctx.store, s3_ctx.settings, s3_ctx.doorbell, f"s3://{BUCKET}/docs/", collection="team"
    )
    run_sync(s3_ctx)
    s3.delete_object(Bucket=BUCKET, Key="docs/keys.txt")
    s3.delete_bucket(Bucket=BUCKET)

    job = run_sync(s3_ctx, source.id)
    assert job.status == JobStatus.FAILED
    assert job.error_message is not None
    assert f"cannot list s3://{BUCKET}/docs/" in job.error_message
    assert "NoSuchBucket" in job.error_message
    assert list(_documents(s3_ctx)) == [f"s3://{BUCKET}/docs/keys.txt"]
    assert sources.get_source(s3_ctx.store, source.id).last_sync_status == "failed"


# --- objects listed as when last read are not read again ---------------------------


class GetCounter:
    """Counts the GetObject calls the sync's own S3 client sends (a botocore event
    hook on the real client, which still talks to the real server)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.keys: list[str] = []
        real_listing_for = sources.listing_for

        def counting_listing_for(location: str, *, endpoint_url: str | None) -> Any:
            listing = real_listing_for(location, endpoint_url=endpoint_url)
            if isinstance(listing, S3Listing):
                events = listing._client.meta.events
                events.register("before-parameter-build.s3.GetObject", self._count)
            return listing

        monkeypatch.setattr(sources, "listing_for", counting_listing_for)

    def _count(self, params: dict[str, Any], **_: Any) -> None:
        self.keys.append(str(params["Key"]))

    def take(self) -> list[str]:
        keys, self.keys = sorted(self.keys), []
        return keys


@pytest.fixture
def gets(monkeypatch: pytest.MonkeyPatch) -> GetCounter:
    return GetCounter(monkeypatch)


def _other_jobs(ctx: Context) -> int:
    return sum(1 for j in ctx.ledger.list_jobs(limit=1000) if j.kind != sources.SYNC)


NOTES = {
    "docs/keys.txt": "Rotating the signing keys happens every ninety days.",
    "docs/guides/backups.md": "# Backups\n\nBackups are copied to cold storage nightly.",
    "docs/vault.txt": "The vault console asks for two approvals.",
}


def test_unchanged_objects_are_not_downloaded_again(
    s3_ctx: Context, s3: Any, gets: GetCounter, embedder: CountingEmbedder
) -> None:
    source = _notes_source(s3_ctx, s3)
    first = run_sync(s3_ctx)
    assert first.result is not None
    assert first.result["submitted"] == 3
    assert gets.take() == sorted(NOTES)
    jobs_before = _other_jobs(s3_ctx)
    embedder.texts_embedded = 0

    again = run_sync(s3_ctx, source.id)
    assert again.result is not None
    assert {k: again.result[k] for k in ("listed", "submitted", "unchanged", "failed")} == {
        "listed": 3,
        "submitted": 0,
        "unchanged": 3,
        "failed": 0,
    }
    assert gets.take() == []
    assert _other_jobs(s3_ctx) == jobs_before
    assert embedder.texts_embedded == 0


def test_an_overwritten_object_of_the_same_size_is_read_and_resubmitted(
    s3_ctx: Context, s3: Any, gets: GetCounter
) -> None:
    source = _notes_synced_once(s3_ctx, s3)
    gets.take()
    changed = NOTES["docs/keys.txt"].replace("ninety", "thirty")
    assert len(changed) == len(NOTES["docs/keys.txt"])
    _put(s3, "docs/keys.txt", changed)  # likely within the same second: same LastModified

    job = run_sync(s3_ctx, source.id)
    assert job.result is not None
    assert (job.result["submitted"], job.result["unchanged"]) == (1, 2)
    assert gets.take() == ["docs/keys.txt"]
    doc = next(
        d for d in s3_ctx.store.documents_in("team") if d.source_uri.endswith("docs/keys.txt")
    )
    assert "thirty" in s3_ctx.store.chunks_of(doc.id)[0].text
    # Remembered as read: the next sync reads nothing.
    run_sync(s3_ctx, source.id)
    assert gets.take() == []


def test_the_same_bytes_uploaded_again_are_read_once_and_stay_unchanged(
    s3_ctx: Context, s3: Any, gets: GetCounter
) -> None:
    _put(s3, "docs/keys.txt", NOTES["docs/keys.txt"])
    source, _ = sources.add_source(
        s3_ctx.store, s3_ctx.settings, s3_ctx.doorbell, f"s3://{BUCKET}/docs/", collection="team"
    )
    run_sync(s3_ctx)
    gets.take()
    old = s3_ctx.store.sources.objects(source.id)[f"s3://{BUCKET}/docs/keys.txt"]
    # Same body, same ETag: upload it again until it lists a later LastModified.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _put(s3, "docs/keys.txt", NOTES["docs/keys.txt"])
        [item] = s3.list_objects_v2(Bucket=BUCKET, Prefix="docs/keys.txt")["Contents"]
        if item["LastModified"].isoformat() != old.listed.split("|")[2]:
            break
    else:
        pytest.fail("the re-upload kept its LastModified")

    job = run_sync(s3_ctx, source.id)
    assert job.result is not None
    assert (job.result["submitted"], job.result["unchanged"]) == (0, 1)
    assert gets.take() == ["docs/keys.txt"]
    run_sync(s3_ctx, source.id)
    assert gets.take() == []


def test_documents_synced_before_objects_were_remembered_are_hashed_once(
    s3_ctx: Context, s3: Any, gets: GetCounter, embedder: CountingEmbedder
) -> None:
    source = _notes_synced_once(s3_ctx, s3)
    gets.take()
    # As a database synced before migration 0012: documents, nothing remembered.
    with s3_ctx.store.engine.begin() as conn:
        conn.execute(sa.delete(source_objects))
    embedder.texts_embedded = 0

    job = run_sync(s3_ctx, source.id)
    assert job.result is not None
    assert (job.result["submitted"], job.result["unchanged"]) == (0, 3)
    assert gets.take() == sorted(NOTES)
    assert embedder.texts_embedded == 0
    assert sorted(s3_ctx.store.sources.objects(source.id)) == sorted(
        f"s3://{BUCKET}/{key}" for key in NOTES
    )
    again = run_sync(s3_ctx, source.id)
    assert again.result is not None
    assert again.result["unchanged"] == 3
    assert gets.take() == []


def test_a_deleted_object_is_forgotten_and_a_removed_source_forgets_all(
    s3_ctx: Context, s3: Any
) -> None:
    source = _notes_synced_once(s3_ctx, s3)
    s3.delete_object(Bucket=BUCKET, Key="docs/vault.txt")
    job = run_sync(s3_ctx, source.id)
    assert job.result is not None
    assert job.result["deleted"] == 1
    assert f"s3://{BUCKET}/docs/vault.txt" not in s3_ctx.store.sources.objects(source.id)
    assert len(s3_ctx.store.sources.objects(source.id)) == 2

    sources.remove_source(s3_ctx.store, source.id)
    assert s3_ctx.store.sources.objects(source.id) == {}


def test_a_renamed_object_is_one_delete_and_one_add_with_no_duplicate_chunks(
    s3_ctx: Context, s3: Any, embedder: CountingEmbedder
) -> None:
    source = _notes_synced_once(s3_ctx, s3)
    chunks_before = _chunk_rows(s3_ctx)
    # S3 has no rename: a copy under the new key, then a delete of the old one.
    old, new = "docs/vault.txt", "docs/security/vault-console.txt"
    s3.copy_object(Bucket=BUCKET, Key=new, CopySource={"Bucket": BUCKET, "Key": old})
    s3.delete_object(Bucket=BUCKET, Key=old)
    embedder.texts_embedded = 0

    job = run_sync(s3_ctx, source.id)
    assert job.result is not None
    counts = ("listed", "submitted", "unchanged", "deleted", "failed")
    assert {k: job.result[k] for k in counts} == {
        "listed": 3,
        "submitted": 1,
        "unchanged": 2,
        "deleted": 1,
        "failed": 0,
    }
    assert sorted(_documents(s3_ctx)) == sorted(
        f"s3://{BUCKET}/{key}" for key in ("docs/keys.txt", "docs/guides/backups.md", new)
    )
    assert set(_documents(s3_ctx).values()) == {DocumentStatus.READY}
    # The same text under a new name: its vectors come from the cache, and the old
    # document's chunks are gone with it.
    assert embedder.texts_embedded == 0
    assert _chunk_rows(s3_ctx) == chunks_before
    assert duplicate_chunk_count(s3_ctx.store) == 0
    [hit, *_] = s3_ctx.searcher.search("how many approvals does the vault console ask", k=1)
    assert hit.source == f"s3://{BUCKET}/{new}"


def _chunk_rows(ctx: Context) -> int:
    with ctx.store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(chunks)).scalar_one())


def _notes_source(ctx: Context, s3: Any) -> SourceRecord:
    """NOTES in the bucket under docs/, and a source of collection `team` over them."""
    for key, text in NOTES.items():
        _put(s3, key, text)
    source, _ = sources.add_source(
        ctx.store, ctx.settings, ctx.doorbell, f"s3://{BUCKET}/docs/", collection="team"
    )
    return source


def _notes_synced_once(ctx: Context, s3: Any) -> SourceRecord:
    source = _notes_source(ctx, s3)
    run_sync(ctx)
    return source
