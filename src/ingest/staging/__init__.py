"""Staging: where an upload's bytes wait between the 202 and the worker that ingests
them. One interface, two backends: a folder every API and worker mounts
(INGEST_STORAGE=filesystem, INGEST_INCOMING_DIR) or an S3-compatible bucket
(INGEST_STORAGE=s3), so queue-mode processes share no volume.

A staged file is named by its *location*, the string kept in the job payload and the
staged-file record: a path relative to INGEST_INCOMING_DIR (`<job id>/<name>`, what
every job queued before S3 staging existed holds) or `s3://<bucket>/<key>`. A
location says which backend holds it, so switching INGEST_STORAGE never strands the
jobs already queued: their bytes are read, and later removed, where they were put.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from ingest.errors import ConfigError, FileTooLarge, StagedFileChanged

if TYPE_CHECKING:
    from ingest.settings import Settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
MAX_FILENAME_CHARS = 200
_MAX_SUFFIX_CHARS = 16
# Job ids are uuid4 hex: the orphan sweep only ever touches names of this shape.
JOB_ID = re.compile(r"[0-9a-f]{32}")
_BLOCK = 1 << 20


def sanitize_filename(name: str) -> str:
    """A client's filename made safe to use as one path component (ASCII, at most
    MAX_FILENAME_CHARS); a long name is shortened before its extension."""
    base = unicodedata.normalize("NFKC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip(" .") or "upload"
    if len(base) <= MAX_FILENAME_CHARS:
        return base
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem or len(suffix) > _MAX_SUFFIX_CHARS:
        return base[:MAX_FILENAME_CHARS]
    return stem[: MAX_FILENAME_CHARS - len(suffix) - 1] + "." + suffix


@dataclass(frozen=True, slots=True)
class StagedFile:
    """Bytes fully written to staging: where (location), how many, their SHA-256."""

    relative: str
    size: int
    sha256: str


def copy_bounded(
    stream: IO[bytes],
    out: IO[bytes] | None,
    max_bytes: int,
    setting: str = "INGEST_MAX_UPLOAD_BYTES",
) -> tuple[int, str]:
    """Read `stream` to its end (into `out`, if any), refusing past `max_bytes` (the
    value of `setting`): (size, sha256 hex)."""
    digest = hashlib.sha256()
    size = 0
    while block := stream.read(_BLOCK):
        size += len(block)
        if size > max_bytes:
            raise FileTooLarge(f"upload exceeds the limit of {max_bytes:,} bytes ({setting})")
        digest.update(block)
        if out is not None:
            out.write(block)
    return size, digest.hexdigest()


class Backend(Protocol):
    """One place staged bytes live."""

    name: str

    def owns(self, location: str) -> bool: ...

    def put(self, stream: IO[bytes], job_id: str, filename: str, *, max_bytes: int) -> StagedFile:
        """Write the whole stream under the job's id (bounded, durable, verified)."""
        ...

    def fetch(self, location: str, *, max_bytes: int) -> AbstractContextManager[Path]:
        """A local file holding the bytes, for as long as the context lasts."""
        ...

    def remove(self, location: str) -> None: ...

    def discard(self, job_id: str) -> None:
        """Remove everything staged under this job's id."""
        ...

    def exists(self, location: str) -> bool: ...

    def staged_jobs(self) -> Iterator[tuple[str, float]]:
        """(job id, time of its newest byte) of everything staged: the orphan sweep."""
        ...

    def check_ready(self) -> str:
        """Raise unless new uploads can be staged; say where they go."""
        ...


class Staging:
    """The one staging object of a process: new bytes go to the configured backend;
    a location is read and removed by the backend that holds it."""

    def __init__(self, primary: Backend, legacy: Backend | None = None) -> None:
        self.primary = primary
        self._backends = [primary] + ([legacy] if legacy is not None else [])

    @property
    def name(self) -> str:
        return self.primary.name

    def backend_for(self, location: str) -> Backend:
        for backend in self._backends:
            if backend.owns(location):
                return backend
        raise StagedFileChanged(
            f"staged file {location!r} is on storage this process is not configured for "
            f"(INGEST_STORAGE={self.primary.name})"
        )

    def put(self, stream: IO[bytes], job_id: str, filename: str, *, max_bytes: int) -> StagedFile:
        return self.primary.put(stream, job_id, filename, max_bytes=max_bytes)

    @contextmanager
    def fetch(
        self, location: str, *, max_bytes: int, size: int | None = None, sha256: str | None = None
    ) -> Iterator[Path]:
        """A local file with the staged bytes. With the size and SHA-256 recorded at
        upload, bytes that changed since are refused, never ingested."""
        with self.backend_for(location).fetch(location, max_bytes=max_bytes) as path:
            if size is not None and sha256 is not None:
                verify(path, location, size, sha256)
            yield path

    def remove(self, location: str) -> None:
        self.backend_for(location).remove(location)

    def discard(self, job_id: str) -> None:
        self.primary.discard(job_id)

    def exists(self, location: str) -> bool:
        return self.backend_for(location).exists(location)

    def staged_jobs(self) -> Iterator[tuple[str, float]]:
        return self.primary.staged_jobs()

    def check_ready(self) -> str:
        return self.primary.check_ready()


def verify(path: Path, location: str, size: int, sha256: str) -> None:
    digest = hashlib.sha256()
    actual = 0
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            actual += len(block)
            digest.update(block)
    if actual != size or digest.hexdigest() != sha256:
        raise StagedFileChanged(
            f"staged file {location} changed since it was uploaded: {actual:,} bytes "
            f"(sha256 {digest.hexdigest()[:12]}…), expected {size:,} (sha256 {sha256[:12]}…)"
        )


def build_staging(settings: Settings) -> Staging:
    """The staging of INGEST_STORAGE. On S3 the incoming folder still reads the
    relative locations of jobs queued before the switch."""
    from ingest.staging.filesystem import FilesystemStaging

    filesystem = FilesystemStaging(settings.incoming_dir)
    if settings.storage == "filesystem":
        return Staging(filesystem)
    if not settings.s3_bucket:
        raise ConfigError(
            "INGEST_STORAGE=s3 needs INGEST_S3_BUCKET (the bucket to stage uploads in)"
        )
    from ingest.staging.s3 import S3Staging

    s3 = S3Staging(
        bucket=settings.s3_bucket, prefix=settings.s3_prefix, endpoint_url=settings.s3_endpoint_url
    )
    return Staging(s3, legacy=filesystem)
