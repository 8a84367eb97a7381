"""A real S3-compatible server for tests: moto's standalone server on a free port.

moto's server speaks the S3 wire protocol over HTTP (PUT/GET/LIST/DELETE, multipart,
checksums), so the code under test uses its real S3 client against it, exactly as it
would against MinIO, Ceph, R2 or AWS. Nothing is mocked in-process.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.support.processes import free_port, wait_until

# Credentials moto accepts (any non-empty pair); the region is what boto3 needs to sign.
ACCESS_KEY = "testing"
SECRET_KEY = "testing"  # noqa: S105 - a test server's throwaway credential
REGION = "us-east-1"


class S3Server:
    """moto's S3-compatible server in its own process, its log in `directory`."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._log = self.directory / "s3.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        assert self._proc is None, "already running"
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = self._proc

        def answers() -> bool:
            if proc.poll() is not None:
                tail = self._log.read_text(errors="replace")[-2000:]
                raise AssertionError(f"the S3 server exited with {proc.returncode}:\n{tail}")
            try:
                return httpx.get(f"{self.endpoint_url}/moto-api/", timeout=2).status_code < 500
            except httpx.TransportError:
                return False

        wait_until(answers, timeout, interval=0.1, message=f"the S3 server on port {self.port}")

    def env(self) -> Mapping[str, str]:
        """The standard AWS variables a client (ours or boto3) reads to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",  # never probe for instance credentials
        }

    def reset(self) -> None:
        """Forget every bucket and object (moto's own reset endpoint)."""
        httpx.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=10)
