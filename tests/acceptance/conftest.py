"""Fixtures for running the system as it is deployed: redis-server, workers, CLI."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from ingest.store import Job, Store
from tests.support.fake_openai import FakeOpenAI
from tests.support.processes import RedisServer, Spawner

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def queue_env(tmp_path: Path, redis_server: RedisServer) -> dict[str, str]:
    """The environment of every process of a queue-mode deployment, with test knobs:
    fast retries and polling, info logs. Lease and heartbeat keep their defaults."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INGEST_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "INGEST_MODE": "queue",
            "REDIS_URL": redis_server.url,
            "DATABASE_URL": f"sqlite:///{(tmp_path / 'ingest.db').resolve()}",
            "INGEST_INCOMING_DIR": str((tmp_path / "incoming").resolve()),
            "INGEST_RETRY_BASE_SECONDS": "0.1",
            "INGEST_POLL_SECONDS": "0.25",
            "INGEST_SHUTDOWN_GRACE_SECONDS": "2",
            "INGEST_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def spawn(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Spawner]:
    """Start workers, schedulers...; all are SIGKILLed (with their children) at teardown,
    and a failing test prints the tail of each one's log."""
    work = tmp_path / "cwd"  # no stray .env is read from the repository
    work.mkdir(exist_ok=True)
    spawner = Spawner(tmp_path / "logs", work)
    try:
        yield spawner
    finally:
        spawner.close()
        if _failed(request):
            print(spawner.log_tails())


class Database:
    """The test's own view of the deployment's SQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.store = Store.open(url)
        self.store.migrate()  # what the first process would do; idempotent
        self.ledger = self.store.jobs

    def job(self, job_id: str) -> Job:
        job = self.ledger.get(job_id)
        assert job is not None, f"no job {job_id}"
        return job

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def db(queue_env: dict[str, str]) -> Iterator[Database]:
    database = Database(queue_env["DATABASE_URL"])
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """An OpenAI-compatible embeddings endpoint in this process, for the workers to call."""
    server = FakeOpenAI()
    try:
        yield server
    finally:
        server.stop()
