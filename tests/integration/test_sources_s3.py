"""s3:// sources against a real S3-compatible server (moto's, over HTTP): objects
listed with boto3, read (bounded), submitted like uploads when new or changed,
their documents deleted when the object is gone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from ingest.context import Context
from ingest.ingestion import sources
from ingest.settings import Settings
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
