"""DATABASE_READ_URL: search and listings read a real streaming replica (a hot standby
built with `pg_basebackup -R` from the test primary); writes, the ledger and a single
document's GET stay on the primary.

The proof that search reads the replica: with replay paused there, a document the
primary already holds (its job succeeded, GET by id finds it) is not found by search
nor listed; once replay resumes, it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.settings import Settings
from ingest.store import Store
from tests.conftest import CountingEmbedder
from tests.fixtures_docs import make_txt
from tests.support.api import Api, running_api
from tests.support.postgres import PostgresReplica, PostgresServer

FIRST = "Rotating the signing keys happens every ninety days through the vault console."
SECOND = "The quokka sanctuary feeds its marsupials eucalyptus every Tuesday morning."


@pytest.fixture(scope="module")
def replica(postgres_server: PostgresServer) -> Iterator[PostgresReplica]:
    server = PostgresReplica(postgres_server)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def poll(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # the poll interval of a deadline-bounded wait
    return result


def search_ids(api: Api, query: str) -> set[str]:
    response = api.post("/api/v1/search", "viewer", json={"query": query, "k": 5})
    assert response.status_code == 200, response.text
    return {hit["document_id"] for hit in response.json()["results"]}


def listed_ids(api: Api) -> set[str]:
    response = api.get("/api/v1/documents", "viewer")
    assert response.status_code == 200, response.text
    return {d["document_id"] for d in response.json()["documents"]}


def upload(api: Api, path: Path) -> tuple[str, str]:
    [job] = api.upload([path]).json()["jobs"]
    done = api.wait_job(job["job_id"])
    assert done["status"] == "succeeded", done
    return job["job_id"], job["document_id"]


def test_search_reads_the_replica_and_writes_go_to_the_primary(
    postgres_server: PostgresServer,
    replica: PostgresReplica,
    embedder: CountingEmbedder,
    tmp_path: Path,
) -> None:
    url = postgres_server.create_database()
    store = Store.open(url)
    store.migrate()
    store.close()
    replica_url = replica.url_for(url.rsplit("/", 1)[1])
    poll(replica.caught_up, "the replica to replay the new database")
    settings = Settings(
        database_url=url,
        database_read_url=replica_url,
        incoming_dir=tmp_path / "incoming",
        isolate_parsing=False,
    )
    docs = tmp_path / "docs"
    with running_api(settings, embedder) as api:
        _, first = upload(api, make_txt(docs, "keys.txt", (FIRST + " ") * 5))
        poll(replica.caught_up, "the replica to catch up")
        assert first in search_ids(api, "signing keys rotation")
        ready = api.client.get("/health/ready").json()["checks"]["database_read"]
        assert ready["status"] == "ok", ready
        assert ready["detail"].startswith("standby, last commit replayed"), ready

        replica.pause_replay()
        try:
            # Uploading writes the staged file, the document, its chunks and the
            # ledger: all on the primary, since the replica refuses every write.
            job_id, second = upload(api, make_txt(docs, "quokka.txt", (SECOND + " ") * 5))
            # Read-your-writes by id: the job and the document come from the primary.
            assert api.get(f"/api/v1/jobs/{job_id}").json()["status"] == "succeeded"
            document = api.get(f"/api/v1/documents/{second}", "viewer")
            assert document.status_code == 200, document.text
            assert document.json()["status"] == "ready"
            # Search and the list read the paused replica: not there yet.
            assert second not in search_ids(api, "quokka marsupials eucalyptus")
            assert listed_ids(api) == {first}
            chunks = api.get(f"/api/v1/documents/{second}/chunks", "viewer").json()
            assert chunks["chunks"] == []
        finally:
            replica.resume_replay()

        poll(lambda: second in search_ids(api, "quokka marsupials eucalyptus"), "replay")
        assert listed_ids(api) == {first, second}
        chunks = api.get(f"/api/v1/documents/{second}/chunks", "viewer").json()
        assert chunks["chunks"]


def test_the_replica_refuses_writes(replica: PostgresReplica) -> None:
    """What makes the test above a proof: a write routed to the replica would fail."""
    with (
        psycopg.connect(replica.admin_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("CREATE TABLE t (x int)")


def test_a_read_url_with_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    from ingest.errors import ConfigError

    with pytest.raises(ConfigError, match="DATABASE_READ_URL"):
        Store.open(f"sqlite:///{tmp_path / 'x.db'}", read_url="postgresql://u@h/db")
