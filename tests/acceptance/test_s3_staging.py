"""Queue mode with S3 staging, as deployed without a shared volume: an `ingest serve`
and a `python -m ingest.worker` in different working directories, no
INGEST_INCOMING_DIR, a real S3-compatible server (moto's) between them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.acceptance.conftest import Database
from tests.acceptance.test_api_processes import (
    AXOLOTL,
    AXOLOTL_QUERY,
    UNLIMITED,
    Api,
    create_key,
    start_api,
)
from tests.fixtures_docs import make_txt, prose
from tests.support.processes import Spawner, free_port, run_cli_json
from tests.support.s3 import S3Server

pytestmark = pytest.mark.slow


def bucket_keys(server: S3Server, bucket: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=server.endpoint_url)
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def staged_files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.timeout(240)
def test_api_and_worker_share_only_the_bucket(
    tmp_path: Path,
    queue_env: dict[str, str],
    spawn: Spawner,
    db: Database,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    env: dict[str, Any] = {
        k: v for k, v in queue_env.items() if k != "INGEST_INCOMING_DIR"
    }  # each process's default ./ingest_incoming: two different folders
    env.update(s3_server.env())
    env.update(
        {
            "INGEST_RATE_LIMIT": UNLIMITED,
            "INGEST_STORAGE": "s3",
            "INGEST_S3_BUCKET": s3_bucket,
            "INGEST_S3_ENDPOINT_URL": s3_server.endpoint_url,
        }
    )
    key = create_key(env, "admin")
    docs = tmp_path / "docs"
    paths = [make_txt(docs, "axolotls.txt", f"{AXOLOTL}\n\n{prose(80, 7)}")] + [
        make_txt(docs, f"note{i}.txt", prose(120, i)) for i in range(3)
    ]
    port = free_port()
    api_proc = start_api(spawn, env, port)  # cwd: tmp_path/cwd
    worker_cwd = tmp_path / "worker-cwd"
    worker_cwd.mkdir()
    workers = Spawner(tmp_path / "worker-logs", worker_cwd)
    api = Api(port, key)
    try:
        ready = api.http.get("/health/ready").json()["checks"]
        assert ready["staging"] == {"status": "ok", "detail": f"s3://{s3_bucket}/ingest/staged/"}
        assert ready["incoming_dir"] == {"status": "disabled"}

        jobs = api.upload(paths)
        ids = [j["job_id"] for j in jobs]
        # The 202 means the bytes are in the bucket, before any worker exists.
        assert sorted(bucket_keys(s3_server, s3_bucket)) == sorted(
            f"ingest/staged/{j['job_id']}/{j['filename']}" for j in jobs
        )
        worker = workers.worker(env, queues="ingest,maintenance", concurrency=2)
        api.wait_succeeded(ids, timeout=150, alive=[worker, api_proc])
        [hit, *_] = api.search(AXOLOTL_QUERY, k=3)
        assert hit["source"] == "upload://default/axolotls.txt"

        cleaned = run_cli_json(env, "maintenance", "run", "cleanup_staged")["jobs"]
        assert cleaned[0]["result"] == {"removed": len(paths), "orphans_removed": 0}
        assert bucket_keys(s3_server, s3_bucket) == []
    finally:
        api.close()
        workers.close()
    # Neither process staged anything in its own folder.
    assert staged_files_in(tmp_path / "cwd" / "ingest_incoming") == []
    assert staged_files_in(worker_cwd / "ingest_incoming") == []
