"""One real `ingest serve` (inline mode, SQLite) for tests of its clients: the Python
client, the remote CLI, the console in a browser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import Spawner, free_port, run_cli_json, wait_http_ok

UNLIMITED = "100000/minute"  # polling must not trip the per-key limit


def inline_env(root: Path, **overrides: str) -> dict[str, str]:
    """The environment of an inline deployment under `root`, no stray INGEST_* of ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INGEST_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "INGEST_MODE": "inline",
            "DATABASE_URL": f"sqlite:///{(root / 'ingest.db').resolve()}",
            "INGEST_INCOMING_DIR": str((root / "incoming").resolve()),
            "INGEST_RATE_LIMIT": UNLIMITED,
            "INGEST_RETRY_BASE_SECONDS": "0.1",
            "INGEST_POLL_SECONDS": "0.25",
            "INGEST_SHUTDOWN_GRACE_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
            **overrides,
        }
    )
    return env


def create_key(env: dict[str, str], role: str) -> str:
    created = run_cli_json(env, "keys", "create", "--role", role, "--name", f"test-{role}")
    key: str = created["key"]
    return key


@dataclass
class Served:
    url: str
    env: dict[str, str]
    spawner: Spawner
    keys: dict[str, str] = field(default_factory=dict)

    def key(self, role: str) -> str:
        if role not in self.keys:
            self.keys[role] = create_key(self.env, role)
        return self.keys[role]


@contextmanager
def serve_inline(root: Path, **overrides: str) -> Iterator[Served]:
    """`ingest serve` on a free port; killed with its children on exit (its logs are
    printed when the block raised)."""
    root.mkdir(parents=True, exist_ok=True)
    work = root / "cwd"  # no stray .env is read from the repository
    work.mkdir(exist_ok=True)
    env = inline_env(root, **overrides)
    spawner = Spawner(root / "logs", work)
    served = Served("", env, spawner)
    served.key("admin")  # also migrates the database before the server starts
    port = free_port()
    proc = spawner.serve(env, port)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/health/live", 90, alive=[proc])
        served.url = f"http://127.0.0.1:{port}"
        yield served
    except BaseException:
        print(spawner.log_tails())
        raise
    finally:
        spawner.close()
