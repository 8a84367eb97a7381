"""Staging, the same tests on both backends: the incoming folder (INGEST_STORAGE=
filesystem) and a real S3-compatible server (INGEST_STORAGE=s3, moto's standalone
server, a bucket per test). What is staged is read past our code: files under the
folder, keys listed in the bucket."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest.context import Context
from ingest.errors import StagingUnavailable
from ingest.ingestion import actions
from ingest.ingestion.maintenance import CLEANUP_STAGED
from ingest.ingestion.submit import IncomingFile
from ingest.settings import Settings
from ingest.staging.s3 import S3Staging
from ingest.store import Job, NewJob, new_job_id
from tests.conftest import CountingEmbedder
from tests.fixtures_docs import make_corrupt_pdf, make_txt
from tests.support.api import assert_problem, running_api
from tests.support.s3 import S3Server

TEXT = (
    "The relay station restarts its beacon at noon every day. "
    "Operators log the restart in the station book before lunch."
)


@dataclass
class Stored:
    """What staging holds, seen as an operator would: `<job id>/<name>` entries."""

    settings: Settings
    endpoint_url: str | None = None

    def names(self) -> set[str]:
        s = self.settings
        if s.storage == "filesystem":
            root = s.incoming_dir
            files = root.rglob("*") if root.exists() else iter(())
            return {p.relative_to(root).as_posix() for p in files if p.is_file()}
        listed = self._client().list_objects_v2(Bucket=s.s3_bucket, Prefix=s.s3_prefix)
        return {o["Key"][len(s.s3_prefix) :] for o in listed.get("Contents", [])}

    def overwrite(self, name: str, data: bytes) -> None:
        s = self.settings
        if s.storage == "filesystem":
            (s.incoming_dir / name).write_bytes(data)
        else:
            self._client().put_object(Bucket=s.s3_bucket, Key=s.s3_prefix + name, Body=data)

    def remove(self, name: str) -> None:
        s = self.settings
        if s.storage == "filesystem":
            (s.incoming_dir / name).unlink()
        else:
            self._client().delete_object(Bucket=s.s3_bucket, Key=s.s3_prefix + name)

    def _client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url)


@pytest.fixture(params=["filesystem", "s3"])
def staged(request: pytest.FixtureRequest, tmp_path: Path) -> Stored:
    base = Settings(
        database_url=f"sqlite:///{tmp_path / 'ingest.db'}",
        incoming_dir=tmp_path / "incoming",
        isolate_parsing=False,
    )
    if request.param == "filesystem":
        return Stored(base)
    bucket: str = request.getfixturevalue("s3_bucket")
    server: S3Server = request.getfixturevalue("s3_server")
    s3 = base.model_copy(
        update={"storage": "s3", "s3_bucket": bucket, "s3_endpoint_url": server.endpoint_url}
    )
    return Stored(s3, server.endpoint_url)


@pytest.fixture
def context(staged: Stored, embedder: CountingEmbedder) -> Iterator[Context]:
    ctx = Context(staged.settings, embedder=embedder)
    yield ctx
    ctx.close()


def upload(ctx: Context, *paths: Path) -> list[Job]:
    with_streams = [IncomingFile(p.name, io.BytesIO(p.read_bytes())) for p in paths]
    return ctx.submitter.submit_upload(with_streams, collection="c")


def run_jobs(ctx: Context, queue: str = "ingest") -> None:
    ctx.worker(queues=[queue], concurrency=1, burst=True).run()


def job(ctx: Context, job_id: str) -> Job:
    found = ctx.ledger.get(job_id)
    assert found is not None
    return found


def cleanup(ctx: Context) -> dict[str, Any]:
    task = ctx.ledger.submit(NewJob(kind=CLEANUP_STAGED, payload={}, queue="maintenance"))
    run_jobs(ctx, "maintenance")
    done = job(ctx, task.id)
    assert done.status == "succeeded", done.error_message
    assert done.result is not None
    return done.result


def test_upload_202_then_the_worker_ingests_the_staged_bytes_and_cleanup_removes_them(
    staged: Stored, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    with running_api(staged.settings, embedder) as api:
        ready = api.client.get("/health/ready").json()["checks"]
        assert ready["staging"]["status"] == "ok", ready
        response = api.upload([make_txt(tmp_path / "src", "relay.txt", TEXT)])
        assert response.status_code == 202, response.text
        job_id = response.json()["jobs"][0]["job_id"]
        assert api.wait_job(job_id)["status"] == "succeeded"
        assert staged.names() == {f"{job_id}/relay.txt"}  # kept until maintenance runs
        hits = api.post("/api/v1/search", json={"query": "beacon restart", "k": 1}).json()
        assert "beacon" in hits["results"][0]["text"]
    with closing(Context(staged.settings, embedder=embedder)) as ctx_:
        assert cleanup(ctx_) == {"removed": 1, "orphans_removed": 0}
    assert staged.names() == set()


def test_bytes_changed_after_the_upload_fail_the_job_with_the_reason(
    context: Context, staged: Stored, tmp_path: Path
) -> None:
    [queued] = upload(context, make_txt(tmp_path / "src", "relay.txt", TEXT))
    staged.overwrite(f"{queued.id}/relay.txt", b"something else entirely")
    run_jobs(context)
    failed = job(context, queued.id)
    assert (failed.status, failed.error_type, failed.attempt) == ("failed", "rejected", 1)
    assert failed.error_message is not None
    assert "changed since it was uploaded" in failed.error_message


def test_a_staged_file_over_the_workers_limit_fails_its_job_unparsed(
    staged: Stored, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    with closing(Context(staged.settings, embedder=embedder)) as api_side:
        [queued] = upload(api_side, make_txt(tmp_path / "src", "relay.txt", TEXT * 40))
    # A worker with a lower INGEST_MAX_FILE_BYTES than the API's upload limit.
    limited = staged.settings.model_copy(update={"max_file_bytes": 1_000})
    with closing(Context(limited, embedder=embedder)) as worker_side:
        run_jobs(worker_side)
        failed = job(worker_side, queued.id)
    assert (failed.status, failed.error_type, failed.attempt) == ("failed", "rejected", 1)
    assert failed.error_message is not None
    assert "INGEST_MAX_FILE_BYTES" in failed.error_message
    assert embedder.texts_embedded == 0


def test_a_staged_file_gone_before_its_job_runs_fails_the_job_with_the_reason(
    context: Context, staged: Stored, tmp_path: Path
) -> None:
    [queued] = upload(context, make_txt(tmp_path / "src", "relay.txt", TEXT))
    staged.remove(f"{queued.id}/relay.txt")
    run_jobs(context)
    failed = job(context, queued.id)
    # Not retried: no attempt brings the bytes back (a restore that lost them).
    assert (failed.status, failed.error_type, failed.attempt) == ("failed", "rejected", 1)
    assert failed.error_message is not None
    assert f"{queued.id}/relay.txt is gone" in failed.error_message


def test_a_failed_job_keeps_its_bytes_and_its_retry_reads_them_again(
    context: Context, staged: Stored, tmp_path: Path
) -> None:
    [broken] = upload(context, make_corrupt_pdf(tmp_path / "src", "broken.pdf"))
    run_jobs(context)
    first = job(context, broken.id)
    assert (first.status, first.error_type) == ("failed", "rejected")
    # A young object no job names (an upload whose commit has not happened yet).
    young = new_job_id()
    context.staging.put(io.BytesIO(b"in flight"), young, "x.txt", max_bytes=100)

    assert cleanup(context) == {"removed": 0, "orphans_removed": 0}
    assert staged.names() == {f"{broken.id}/broken.pdf", f"{young}/x.txt"}

    actions.retry_job(context.store, context.settings, context.doorbell, broken.id)
    run_jobs(context)
    second = job(context, broken.id)
    # The same bytes were read again: the same verdict on the PDF, not a missing file.
    assert (second.status, second.error_type) == ("failed", "rejected")
    assert second.error_message == first.error_message


def test_past_the_retention_finished_uploads_and_orphans_are_swept(
    staged: Stored, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    settings = staged.settings.model_copy(update={"upload_retention": timedelta(0)})
    with closing(Context(settings, embedder=embedder)) as ctx:
        [good, broken] = upload(
            ctx,
            make_txt(tmp_path / "src", "relay.txt", TEXT),
            make_corrupt_pdf(tmp_path / "src", "broken.pdf"),
        )
        run_jobs(ctx)
        assert [job(ctx, j.id).status for j in (good, broken)] == ["succeeded", "failed"]
        # A crash between staging and the job's commit leaves bytes no job names.
        orphan = new_job_id()
        ctx.staging.put(io.BytesIO(b"crashed before commit"), orphan, "o.txt", max_bytes=100)
        assert len(staged.names()) == 3
        assert cleanup(ctx) == {"removed": 2, "orphans_removed": 1}
    assert staged.names() == set()


# A process that stages an upload and is killed before its job row commits.
_CRASH_BEFORE_COMMIT = textwrap.dedent(
    """
    import io, json, os, signal, sys
    from ingest.context import Context
    from ingest.ingestion.submit import IncomingFile, Submitter
    from ingest.settings import Settings

    def crash(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    Submitter.submit_uploads = crash  # called once every file of the upload is staged
    ctx = Context(Settings(**json.loads(sys.argv[1])))
    upload = IncomingFile("relay.txt", io.BytesIO(sys.argv[2].encode()))
    ctx.submitter.submit_upload([upload], collection="c")
    """
)


def test_a_crash_between_staging_and_the_commit_leaves_an_orphan_the_sweep_removes(
    staged: Stored, embedder: CountingEmbedder
) -> None:
    s = staged.settings
    fields = {
        "database_url": s.database_url,
        "incoming_dir": str(s.incoming_dir),
        "isolate_parsing": False,
        "storage": s.storage,
        "s3_bucket": s.s3_bucket,
        "s3_endpoint_url": s.s3_endpoint_url,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.pop("DATABASE_URL", None)
    crashed = subprocess.run(
        [sys.executable, "-c", _CRASH_BEFORE_COMMIT, json.dumps(fields), TEXT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    [orphan] = staged.names()
    assert orphan.endswith("/relay.txt")

    with closing(Context(s, embedder=embedder)) as ctx:
        # Never a job without its bytes: the crash left bytes without a job.
        assert ctx.ledger.list_jobs(limit=10) == []
        # Young, it may be an upload whose commit is on its way: kept.
        assert cleanup(ctx) == {"removed": 0, "orphans_removed": 0}
        assert staged.names() == {orphan}
    past_retention = s.model_copy(update={"upload_retention": timedelta(0)})
    with closing(Context(past_retention, embedder=embedder)) as ctx:
        assert cleanup(ctx) == {"removed": 0, "orphans_removed": 1}
    assert staged.names() == set()


@pytest.mark.parametrize("stored", ["shorter", "same size, other bytes"])
def test_an_object_stored_other_than_sent_is_refused_and_deleted(
    s3_server: S3Server, s3_bucket: str, embedder: CountingEmbedder, tmp_path: Path, stored: str
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ingest.db'}",
        isolate_parsing=False,
        storage="s3",
        s3_bucket=s3_bucket,
        s3_endpoint_url=s3_server.endpoint_url,
    )
    sent = make_txt(tmp_path / "src", "relay.txt", TEXT)
    data = sent.read_bytes()
    other = data[:-10] if stored == "shorter" else data[::-1]
    writer = Stored(settings, s3_server.endpoint_url)._client()

    def swap(params: dict[str, Any], **_: Any) -> None:
        # What the server holds is not what was sent (a proxy or a server that
        # stored other bytes): the HEAD after the PUT is what must notice.
        key = params["Key"]
        writer.put_object(Bucket=s3_bucket, Key=key, Body=other, ChecksumAlgorithm="SHA256")

    with closing(Context(settings, embedder=embedder)) as ctx:
        s3 = ctx.staging.primary
        assert isinstance(s3, S3Staging)
        s3.client.meta.events.register("before-parameter-build.s3.HeadObject", swap)
        with pytest.raises(StagingUnavailable, match="does not hold what was sent"):
            upload(ctx, sent)
        assert ctx.ledger.list_jobs(limit=10) == []
    assert Stored(settings, s3_server.endpoint_url).names() == set()


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing_staged(
    staged: Stored, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    settings = staged.settings.model_copy(update={"max_upload_bytes": 2_000})
    small = make_txt(tmp_path / "src", "small.txt", TEXT)
    big = make_txt(tmp_path / "src", "big.txt", TEXT * 40)
    with running_api(settings, embedder) as api:
        assert_problem(api.upload([small, big]), 413, "payload-too-large")
        assert staged.names() == set()
        assert api.get("/api/v1/jobs", params={"kind": "ingest"}).json()["jobs"] == []


def test_jobs_queued_on_the_folder_still_run_after_switching_to_s3(
    s3_server: S3Server, s3_bucket: str, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    folder = Settings(
        database_url=f"sqlite:///{tmp_path / 'ingest.db'}",
        incoming_dir=tmp_path / "incoming",
        isolate_parsing=False,
    )
    with closing(Context(folder, embedder=embedder)) as before:
        [queued] = upload(before, make_txt(tmp_path / "src", "relay.txt", TEXT))
    on_s3 = folder.model_copy(
        update={"storage": "s3", "s3_bucket": s3_bucket, "s3_endpoint_url": s3_server.endpoint_url}
    )
    with closing(Context(on_s3, embedder=embedder)) as after:
        run_jobs(after)
        assert job(after, queued.id).status == "succeeded"
        assert cleanup(after)["removed"] == 1
    assert not (tmp_path / "incoming" / queued.id).exists()


def test_a_file_a_client_placed_in_the_incoming_folder_is_ingested_and_kept(
    context: Context, staged: Stored
) -> None:
    # POST /api/v1/jobs/ingest: on S3 the API copies it into the bucket for the workers.
    placed = make_txt(staged.settings.incoming_dir / "drop", "relay.txt", TEXT)
    queued = context.submitter.submit_incoming(placed, collection="c")
    run_jobs(context)
    assert job(context, queued.id).status == "succeeded"
    cleanup(context)
    assert placed.read_text() == TEXT  # the client's file: never ours to delete
    on_folder = staged.settings.storage == "filesystem"
    assert staged.names() == ({"drop/relay.txt"} if on_folder else set())


def test_a_missing_bucket_makes_the_api_not_ready_and_uploads_503(
    s3_server: S3Server, s3_bucket: str, embedder: CountingEmbedder, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ingest.db'}",
        isolate_parsing=False,
        storage="s3",
        s3_bucket=f"{s3_bucket}-missing",
        s3_endpoint_url=s3_server.endpoint_url,
    )
    with running_api(settings, embedder) as api:
        ready = api.client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["staging"]["status"] == "error"
        response = api.upload([make_txt(tmp_path / "src", "relay.txt", TEXT)])
        problem = assert_problem(response, 503, "staging-unavailable")
        assert f"s3://{s3_bucket}-missing" in problem["detail"]
        assert response.headers["Retry-After"]
        assert api.get("/api/v1/jobs", params={"kind": "ingest"}).json()["jobs"] == []
