"""A real PgBouncer (Debian's `pgbouncer` package) in transaction pooling mode in
front of the test PostgreSQL, on a free port. Without the binary, tests that need it
fail with the install command: they never pass silently."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import PostgresServer, free_port

INSTALL = "apt-get install -y pgbouncer   (as root; ./scripts/setup does it)"


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        pytest.fail(f"this test needs PgBouncer: {INSTALL}", pytrace=False)
    return found


# The configuration docs/scaling.md documents, with test paths and ports. `auth_type =
# any` logs every client in as the server's `postgres` user (trust on a test box).
CONFIG = """\
[databases]
* = host=127.0.0.1 port={server_port} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 500
default_pool_size = 10
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = {root}/pgbouncer.log
pidfile = {root}/pgbouncer.pid
"""


class PgBouncer:
    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.root = Path(tempfile.mkdtemp(prefix="ingest-pgbouncer-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url_for(self, database_url: str) -> str:
        """The same database as `database_url` (a URL of the server), through PgBouncer."""
        database = database_url.rsplit("/", 1)[1]
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def log(self) -> Path:
        return self.root / "pgbouncer.log"

    def start(self, timeout: float = 30.0) -> None:
        binary = pgbouncer_binary()
        config = self.root / "pgbouncer.ini"
        config.write_text(
            CONFIG.format(server_port=self.server.port, port=self.port, root=self.root)
        )
        prefix: list[str] = []
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            shutil.chown(self.root, "nobody", "nogroup")
            prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
        self.process = subprocess.Popen(
            [*prefix, binary, str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(url, connect_timeout=2, prepare_threshold=None) as conn:
                    conn.execute("SELECT 1")
                    return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log.read_text() if self.log.exists() else "(no log)"
                    raise AssertionError(f"PgBouncer did not start: {log[-2000:]}") from None
                time.sleep(0.1)  # the poll interval of a deadline-bounded wait

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
