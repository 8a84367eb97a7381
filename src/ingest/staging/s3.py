"""Staging in an S3-compatible bucket (AWS, MinIO, Ceph, R2): no volume shared
between API and workers. boto3 comes with the `ingest[s3]` extra and is imported
only when INGEST_STORAGE=s3.

The promise of a 202 holds as on a folder: the PUT carries the SHA-256 the API
computed while reading the upload, so the server refuses bytes that do not match,
and a HEAD confirms the stored size and checksum before the job is committed. A
crash between the PUT and the commit leaves an object no job names; the orphan
sweep (maintenance) deletes it once older than INGEST_UPLOAD_RETENTION."""

from __future__ import annotations

import base64
import logging
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from ingest.errors import ConfigError, DocumentRejected, FileTooLarge, StagingUnavailable
from ingest.staging import JOB_ID, StagedFile, copy_bounded, sanitize_filename

log = logging.getLogger(__name__)
_SCHEME = "s3://"
# Errors that say the object is not there (as opposed to the service failing).
_MISSING = {"404", "NoSuchKey", "NotFound"}


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise ConfigError(
            "INGEST_STORAGE=s3 needs boto3: install the s3 extra (pip install 'ingest[s3]')"
        ) from None
    return boto3


class S3Staging:
    """`s3://<bucket>/<prefix><job id>/<safe name>`. Credentials and region come from
    the standard AWS chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, instance roles...)."""

    name = "s3"

    def __init__(self, *, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        self.boto3 = _boto3()
        import botocore.exceptions

        self._errors: tuple[type[Exception], ...] = (
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
        )
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self._lock = threading.Lock()
        self._client: Any = None

    @property
    def client(self) -> Any:
        # Built once, on first use (a client is thread-safe; building one is not).
        with self._lock:
            if self._client is None:
                from botocore.config import Config

                config = Config(
                    connect_timeout=10,
                    read_timeout=60,
                    retries={"max_attempts": 4, "mode": "standard"},
                    # A custom endpoint (MinIO, Ceph) rarely resolves bucket subdomains.
                    s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                )
                session = self.boto3.session.Session()
                self._client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
            return self._client

    # --- locations --------------------------------------------------------------------

    def owns(self, location: str) -> bool:
        return location.startswith(_SCHEME)

    def location(self, key: str) -> str:
        return f"{_SCHEME}{self.bucket}/{key}"

    def split(self, location: str) -> tuple[str, str]:
        bucket, _, key = location.removeprefix(_SCHEME).partition("/")
        return bucket, key

    # --- writing ------------------------------------------------------------------------

    def put(self, stream: IO[bytes], job_id: str, filename: str, *, max_bytes: int) -> StagedFile:
        key = f"{self.prefix}{job_id}/{sanitize_filename(filename)}"
        # Bounded and hashed before anything is sent: too big leaves no object. An
        # upload is already spooled by the web server (seekable): read it twice
        # rather than copy it again.
        if stream.seekable():
            start = stream.tell()
            size, sha256 = copy_bounded(stream, None, max_bytes)
            stream.seek(start)
            self._put_verified(key, stream, size, sha256)
            return StagedFile(self.location(key), size, sha256)
        with tempfile.TemporaryFile() as spool:
            size, sha256 = copy_bounded(stream, spool, max_bytes)
            spool.seek(0)
            self._put_verified(key, spool, size, sha256)
        return StagedFile(self.location(key), size, sha256)

    def _put_verified(self, key: str, body: IO[bytes], size: int, sha256: str) -> None:
        """One PUT the server checks against our SHA-256, then a HEAD that must show
        the same size and checksum; on any doubt the object is deleted."""
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentLength=size,
                ChecksumSHA256=checksum,
            )
            head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except self._errors as exc:
            self._delete_quietly(self.bucket, key)
            raise StagingUnavailable(
                f"could not stage the upload in s3://{self.bucket}: {exc}"
            ) from exc
        stored = head.get("ChecksumSHA256")
        if head.get("ContentLength") != size or (stored is not None and stored != checksum):
            self._delete_quietly(self.bucket, key)
            raise StagingUnavailable(
                f"s3://{self.bucket}/{key} does not hold what was sent "
                f"({head.get('ContentLength')} bytes stored, {size} sent)"
            )

    # --- reading --------------------------------------------------------------------------

    @contextmanager
    def fetch(self, location: str, *, max_bytes: int) -> Iterator[Path]:
        """Download to a private temporary file (bounded), removed afterwards."""
        bucket, key = self.split(location)
        suffix = Path(key).suffix
        with tempfile.TemporaryDirectory(prefix="ingest-s3-") as folder:
            path = Path(folder) / f"staged{suffix}"
            self._download(bucket, key, path, max_bytes)
            yield path

    def _download(self, bucket: str, key: str, path: Path, max_bytes: int) -> None:
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
        except self._errors as exc:
            if _is_missing(exc):
                raise DocumentRejected(f"the staged object s3://{bucket}/{key} is gone") from None
            raise StagingUnavailable(f"could not read s3://{bucket}/{key}: {exc}") from exc
        body = response["Body"]
        try:
            if int(response.get("ContentLength") or 0) > max_bytes:
                raise FileTooLarge(
                    f"staged object is {response['ContentLength']:,} bytes, over "
                    f"INGEST_MAX_FILE_BYTES ({max_bytes:,})"
                )
            with path.open("wb") as out:
                copy_bounded(body, out, max_bytes, "INGEST_MAX_FILE_BYTES")
        except self._errors as exc:
            raise StagingUnavailable(f"reading s3://{bucket}/{key} failed: {exc}") from exc
        finally:
            body.close()

    def exists(self, location: str) -> bool:
        bucket, key = self.split(location)
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except self._errors as exc:
            if _is_missing(exc):
                return False
            raise StagingUnavailable(f"could not check s3://{bucket}/{key}: {exc}") from exc
        return True

    # --- removing -----------------------------------------------------------------------

    def remove(self, location: str) -> None:
        bucket, key = self.split(location)
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except self._errors as exc:
            raise StagingUnavailable(f"could not delete s3://{bucket}/{key}: {exc}") from exc

    def discard(self, job_id: str) -> None:
        # Often on a path that already failed (a refused upload): never replace that
        # error with one of the store's. What stays behind, the orphan sweep removes.
        try:
            for key, _ in self._objects(f"{self.prefix}{job_id}/"):
                self._delete_quietly(self.bucket, key)
        except StagingUnavailable as exc:
            log.warning("could not discard the staged objects of job %s: %s", job_id, exc)

    def _delete_quietly(self, bucket: str, key: str) -> None:
        # Best effort on a path that already failed: the orphan sweep is the backstop.
        with suppress(*self._errors):
            self.client.delete_object(Bucket=bucket, Key=key)

    def staged_jobs(self) -> Iterator[tuple[str, float]]:
        newest: dict[str, float] = {}
        for key, modified in self._objects(self.prefix):
            job_id = key[len(self.prefix) :].split("/", 1)[0]
            if JOB_ID.fullmatch(job_id):
                newest[job_id] = max(modified, newest.get(job_id, 0.0))
        yield from newest.items()

    def _objects(self, prefix: str) -> Iterator[tuple[str, float]]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"], item["LastModified"].timestamp()
        except self._errors as exc:
            raise StagingUnavailable(f"could not list s3://{self.bucket}/{prefix}: {exc}") from exc

    def check_ready(self) -> str:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self._errors as exc:
            raise StagingUnavailable(f"bucket {self.bucket!r} is not usable: {exc}") from exc
        return f"s3://{self.bucket}/{self.prefix}"


def _is_missing(exc: Exception) -> bool:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code", "")) in _MISSING
