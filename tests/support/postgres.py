"""A real PostgreSQL 16 + pgvector server for tests, from the `pgserver` wheel's
bundled binaries, run in a temp dir on a free port and stopped afterwards.

We run the binaries ourselves rather than pgserver's Python wrapper, which (as
root) adds a system user and changes folder permissions. PostgreSQL refuses to
run as root, so under root the server runs as `nobody`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg


class PostgresUnavailable(RuntimeError):
    pass


def bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresUnavailable(
            "the pgserver wheel (PostgreSQL + pgvector binaries) is not installed: "
            "pip install -e '.[dev]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise PostgresUnavailable(f"no postgres binary in {path}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_service_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


class PostgresServer:
    """Owns a fresh temp folder (directly under the system temp dir, because the
    server user must be able to reach it; pytest's tmp_path is private to root)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ingest-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.root / "postgres.log"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        pg = bin_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "nobody", "nogroup")
        prefix = _as_service_user()
        subprocess.run(
            [
                *prefix,
                str(pg / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        self._launch()
        self._wait_accepting(timeout)

    def _launch(self) -> None:
        prefix = _as_service_user()
        pg = bin_dir()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    *prefix,
                    str(pg / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.root),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_accepting(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise PostgresUnavailable(
                        f"PostgreSQL did not start: {self.log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


class PostgresReplica(PostgresServer):
    """A hot standby streaming from `primary`: `pg_basebackup -R` (base backup plus
    the standby.signal and primary_conninfo it writes) into a new data dir, started
    on its own port. It accepts read-only connections; every write there fails."""

    def __init__(self, primary: PostgresServer) -> None:
        super().__init__()
        self.primary = primary

    def start(self, timeout: float = 60.0) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "nobody", "nogroup")
        subprocess.run(
            [
                *_as_service_user(),
                str(bin_dir() / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.port),
                "-U",
                "postgres",
                "-D",
                str(self.data),
                "-R",
                "-X",
                "stream",
                # Not a spread checkpoint: with dirty pages that one takes up to
                # checkpoint_timeout x 0.9 (4.5 minutes) before the copy starts.
                "--checkpoint=fast",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        self._launch()
        self._wait_accepting(timeout)
        self._wait_streaming(timeout)

    def _wait_streaming(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with psycopg.connect(self.primary.admin_url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
                ).fetchone()
            if row and row[0] >= 1:
                return
            if time.monotonic() > deadline:
                raise PostgresUnavailable(f"the replica never streamed: {self.log.read_text()}")
            time.sleep(0.1)  # the poll interval of a deadline-bounded wait

    def caught_up(self) -> bool:
        """The replica has replayed everything the primary has written so far."""
        with psycopg.connect(self.primary.admin_url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            done = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)
            ).fetchone()
        return bool(done and done[0])

    def pause_replay(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
