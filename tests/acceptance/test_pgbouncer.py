"""Behind PgBouncer in transaction pooling mode (Debian's pgbouncer 1.18, which keeps
no prepared statements): every transaction may run on another server connection, so
nothing of ours may rely on session state. `ingest migrate`, `ingest add --no-wait`,
two worker processes claiming side by side and `ingest search` all go through it,
with INGEST_DB_PREPARED_STATEMENTS=false as docs/scaling.md says.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.store import Store
from tests.fixtures_docs import make_txt, prose
from tests.support.fake_openai import API_KEY, MODEL, FakeOpenAI
from tests.support.pgbouncer import PgBouncer
from tests.support.postgres import PostgresServer
from tests.support.processes import Spawner, run_cli_json, wait_until
from tests.support.store_checks import duplicate_chunk_count

pytestmark = pytest.mark.slow

DOCUMENTS = 16


@pytest.fixture
def bouncer(postgres_server: PostgresServer) -> Iterator[PgBouncer]:
    pooler = PgBouncer(postgres_server)
    pooler.start()
    try:
        yield pooler
    finally:
        pooler.stop()


def test_ledger_ingest_and_search_through_pgbouncer_transaction_mode(
    tmp_path: Path,
    postgres_server: PostgresServer,
    bouncer: PgBouncer,
    queue_env: dict[str, str],
    spawn: Spawner,
    fake_openai: FakeOpenAI,
) -> None:
    url = bouncer.url_for(postgres_server.create_database())
    env = {
        **queue_env,
        "DATABASE_URL": url,
        "INGEST_DB_PREPARED_STATEMENTS": "false",
        # An embedding server instead of the local model: no model load per worker.
        "INGEST_EMBEDDER": "openai",
        "INGEST_EMBEDDING_URL": fake_openai.url,
        "INGEST_EMBEDDING_MODEL": MODEL,
        "INGEST_EMBEDDING_API_KEY": API_KEY,
    }
    store = Store.open(url, prepared_statements=False)
    try:
        store.migrate()  # its advisory lock is transaction-scoped: fine through PgBouncer

        docs = tmp_path / "docs"
        for i in range(DOCUMENTS):
            make_txt(docs, f"note{i:02}.txt", f"Zebracorn report {i}. " + prose(120, i))
        report = run_cli_json(env, "add", str(docs), "--no-wait")
        job_ids = [j["job_id"] for j in report["jobs"]]
        assert len(job_ids) == DOCUMENTS

        # Two workers of two slots each: four claimers on the ledger at once, each poll
        # and heartbeat past psycopg's prepare threshold of 5 executions.
        workers = [spawn.worker(env, concurrency=2, name=f"worker-{n}") for n in (1, 2)]

        def all_done() -> list[str] | None:
            jobs = store.jobs.get_many(job_ids)
            if len(jobs) == DOCUMENTS and all(j.is_terminal for j in jobs):
                return [j.status for j in jobs]
            return None

        statuses = wait_until(all_done, 240, interval=0.2, message="jobs", alive=workers)
        assert statuses == ["succeeded"] * DOCUMENTS
        assert duplicate_chunk_count(store) == 0
        assert store.counts()["by_status"] == {"ready": DOCUMENTS}
    finally:
        store.close()
    for worker in workers:
        assert "prepared statement" not in worker.log_text()

    hits = run_cli_json(env, "search", "zebracorn report", "--mode", "keyword", "-k", "3")
    assert len(hits["results"]) == 3
