"""`ingest health schema|worker|scheduler`, as a container health check runs them:
exit 0 when healthy, 1 with the reason on stderr when not."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from ingest.context import Context
from ingest.jobs.scheduler import Scheduler
from ingest.settings import Settings
from tests.support.processes import INGEST, Spawner, run_cli, wait_until

pytestmark = pytest.mark.slow


def health(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INGEST, "health", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_schema_is_unhealthy_until_migrated(queue_env: dict[str, str]) -> None:
    before = health(queue_env, "schema")
    assert before.returncode == 1
    assert "ingest migrate" in before.stderr

    run_cli(queue_env, "migrate")
    after = health(queue_env, "schema")
    assert after.returncode == 0, after.stderr
    assert "schema is current" in after.stdout


def test_schema_wait_gives_up_with_the_reason(queue_env: dict[str, str]) -> None:
    waited = health(queue_env, "schema", "--wait", "1")
    assert waited.returncode == 1
    assert "waiting:" in waited.stderr
    assert "ingest migrate" in waited.stderr


def test_schema_wait_ends_once_migrated(queue_env: dict[str, str], spawn: Spawner) -> None:
    waiting = spawn.ingest(queue_env, "health", "schema", "--wait", "120", name="init")
    wait_until(lambda: "waiting:" in waiting.log_text(), 60, message="it to wait", alive=[waiting])
    run_cli(queue_env, "migrate")
    assert waiting.wait(timeout=60) == 0, waiting.log_tail()


def test_worker_health_follows_the_worker_heartbeat(
    queue_env: dict[str, str], spawn: Spawner
) -> None:
    env = {**queue_env, "INGEST_WORKER_STALE_SECONDS": "5"}
    run_cli(env, "migrate")
    missing = health(env, "worker")
    assert missing.returncode == 1
    assert "no worker has registered" in missing.stderr

    worker = spawn.worker(env)
    wait_until(
        lambda: health(env, "worker").returncode == 0, 90, message="a live worker", alive=[worker]
    )
    worker.kill()
    wait_until(lambda: health(env, "worker").returncode == 1, 60, message="a stale worker")
    assert "no heartbeat" in health(env, "worker").stderr


def test_scheduler_health_follows_the_maintenance_slots(
    queue_env: dict[str, str], spawn: Spawner
) -> None:
    env = {**queue_env, "INGEST_MAINTENANCE_INTERVAL_SECONDS": "2"}
    run_cli(env, "migrate")
    idle = health(env, "scheduler")
    assert idle.returncode == 1
    assert "no maintenance job" in idle.stderr

    scheduler = spawn.ingest(env, "scheduler", name="scheduler")
    wait_until(
        lambda: health(env, "scheduler").returncode == 0,
        60,
        message="a ticking scheduler",
        alive=[scheduler],
    )
    scheduler.kill()
    wait_until(lambda: health(env, "scheduler").returncode == 1, 60, message="a silent scheduler")


def test_scheduler_health_fails_when_the_last_ticks_are_old(queue_env: dict[str, str]) -> None:
    settings = Settings(
        database_url=queue_env["DATABASE_URL"],
        incoming_dir=Path(queue_env["INGEST_INCOMING_DIR"]),
        mode="inline",
    )
    ctx = Context(settings)
    try:
        long_ago = time.time() - 3 * settings.maintenance_interval_seconds
        assert Scheduler(ctx.runtime).tick(now=long_ago)
        assert health(queue_env, "scheduler").returncode == 1
        assert Scheduler(ctx.runtime).tick()
        assert health(queue_env, "scheduler").returncode == 0
    finally:
        ctx.close()
