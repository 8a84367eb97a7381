"""The tests' Redis server comes from the project's own install step, not the machine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.processes import RedisServer, redis_server_binary


def test_the_redis_server_is_the_installed_package_s_even_with_nothing_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no redis-server to be found
    binary = Path(redis_server_binary())
    assert Path(sys.prefix).resolve() in binary.resolve().parents  # this venv's, from setup

    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        with server.client() as client:
            assert client.ping()
            client.lpush("doorbell", "job-1")
            assert client.blpop(["doorbell"], timeout=1) == (b"doorbell", b"job-1")
    finally:
        server.stop()
