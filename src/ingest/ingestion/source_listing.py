"""What a synced source holds right now: a folder's files or an S3 prefix's objects,
filtered by the source's include and exclude globs.

A listing that cannot be made (folder missing, bucket unreachable, no boto3) is a
SourceUnavailable: the sync fails with that reason and deletes nothing."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

from ingest.errors import FileTooLarge, InvalidInput, SourceUnavailable
from ingest.ingestion.discovery import discover_files

S3_SCHEME = "s3://"
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_SECONDS = 10.0
# Each listing page asks for at most this many objects (S3's own maximum).
_S3_PAGE = 1000


def parse_every(text: str) -> float:
    """`--every 15m` in seconds: a number with s, m, h or d (seconds without)."""
    match = _EVERY.match(text)
    if not match:
        raise InvalidInput(
            f"--every {text!r}: use a number with s, m, h or d (30s, 15m, 1h, 1d)", field="every"
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < MIN_INTERVAL_SECONDS:
        raise InvalidInput(
            f"--every {text!r}: a source is synced at most every {MIN_INTERVAL_SECONDS:g} s",
            field="every",
        )
    return seconds


def normalize_location(text: str) -> str:
    """An S3 location as given (s3://bucket/prefix), a folder as its absolute path:
    the source URIs of its documents are then those `ingest add FOLDER` gives."""
    if "\x00" in text or not text.strip():
        raise InvalidInput("a source is a folder path or s3://bucket/prefix", field="location")
    if text.startswith(S3_SCHEME):
        bucket, _, _prefix = text.removeprefix(S3_SCHEME).partition("/")
        if not bucket:
            raise InvalidInput(f"{text!r}: no bucket name (s3://bucket/prefix)", field="location")
        return text
    return str(Path(text).expanduser().resolve())


def is_selected(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """A glob matches the path relative to the source (`*` crosses folders) or the
    file's name. With includes a file must match one; no exclude may match."""
    name = PurePosixPath(relative).name

    def matches(glob: str) -> bool:
        return fnmatchcase(relative, glob) or fnmatchcase(name, glob)

    if include and not any(matches(g) for g in include):
        return False
    return not any(matches(g) for g in exclude)


@dataclass(frozen=True, slots=True)
class Listed:
    """One file or object of a source: its path relative to the source, the URI its
    document has, its size when the listing says, and its identity as listed (S3:
    ETag, size and LastModified) when the listing gives one to trust: listed with the
    same identity as when its bytes were hashed, the object is not read again."""

    relative: str
    uri: str
    size: int | None = None
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """An object's bytes, and whether they are those of the object as listed (the
    read answered the listed ETag and size: not overwritten in between)."""

    data: bytes
    as_listed: bool


class FolderListing:
    """A local (or mounted) folder: every file under it but hidden ones, as `ingest add`."""

    def __init__(self, location: str) -> None:
        self.root = Path(location)

    def list(self) -> list[Listed]:
        if not self.root.is_dir():
            raise SourceUnavailable(f"cannot list {self.root}: no such folder")
        try:
            files = discover_files([self.root])
        except OSError as exc:
            raise SourceUnavailable(f"cannot list {self.root}: {exc.strerror or exc}") from exc
        return [Listed(f.relative_to(self.root).as_posix(), str(f)) for f in files]

    def relative(self, uri: str) -> str | None:
        """The path of a document's URI inside this folder; None when outside it."""
        path = Path(uri)
        if self.root not in path.parents:
            return None
        return path.relative_to(self.root).as_posix()


class S3Listing:
    """The objects under an S3 prefix, read with boto3 (the `ingest[s3]` extra):
    credentials and region from the standard AWS variables, the endpoint from
    INGEST_S3_ENDPOINT_URL (MinIO, Ceph, R2...) when set."""

    def __init__(self, location: str, *, endpoint_url: str | None) -> None:
        self.location = location
        self.bucket, _, self.prefix = location.removeprefix(S3_SCHEME).partition("/")
        self._client = _s3_client(endpoint_url)

    def list(self) -> list[Listed]:
        from botocore.exceptions import BotoCoreError, ClientError

        found: list[Listed] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, PaginationConfig={"PageSize": _S3_PAGE}
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = str(item["Key"])
                    relative = self._relative_key(key)
                    if relative and not key.endswith("/") and not _hidden(relative):
                        size = int(item["Size"])
                        identity = _s3_identity(item.get("ETag"), size, item.get("LastModified"))
                        found.append(Listed(relative, self.uri_of(key), size, identity))
        except (BotoCoreError, ClientError) as exc:
            raise SourceUnavailable(f"cannot list {self.location}: {exc}") from exc
        return found

    def uri_of(self, key: str) -> str:
        return f"{S3_SCHEME}{self.bucket}/{key}"

    def _relative_key(self, key: str) -> str:
        return key.removeprefix(self.prefix).lstrip("/")

    def relative(self, uri: str) -> str | None:
        if not uri.startswith(self.uri_of(self.prefix)):
            return None
        return self._relative_key(uri.removeprefix(f"{S3_SCHEME}{self.bucket}/")) or None

    def fetch(self, listed: Listed, *, max_bytes: int) -> Fetched:
        """The object's bytes, refused past `max_bytes` (INGEST_MAX_UPLOAD_BYTES) before
        and while reading: an object can grow between the listing and the read."""
        from botocore.exceptions import BotoCoreError, ClientError

        if listed.size is not None and listed.size > max_bytes:
            raise FileTooLarge(_too_large(listed.size, max_bytes))
        key = listed.uri.removeprefix(f"{S3_SCHEME}{self.bucket}/")
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"]
            data: bytes = body.read(max_bytes + 1)
            body.close()
        except (BotoCoreError, ClientError) as exc:
            raise SourceUnavailable(f"cannot read {listed.uri}: {exc}") from exc
        if len(data) > max_bytes:
            raise FileTooLarge(_too_large(len(data), max_bytes))
        listed_etag = (listed.identity or "").partition("|")[0]
        as_listed = (
            listed.identity is not None
            and response.get("ETag") == listed_etag
            and len(data) == listed.size
        )
        return Fetched(data, as_listed)


def _s3_identity(etag: Any, size: int, modified: Any) -> str | None:
    """An object's ETag, size and LastModified as one string; None without an ETag.
    A rewrite changes the LastModified and (but for an identical body) the ETag; the
    size guards against an ETag that is not a digest of the body (SSE-C, multipart)."""
    if not etag:
        return None
    stamp = modified.isoformat() if hasattr(modified, "isoformat") else str(modified or "")
    return f"{etag}|{size}|{stamp}"


def _too_large(size: int, max_bytes: int) -> str:
    return f"object of {size:,} bytes exceeds INGEST_MAX_UPLOAD_BYTES ({max_bytes:,})"


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(relative).parts)


def _s3_client(endpoint_url: str | None) -> Any:
    # Imported here: boto3 is an optional extra, needed only by s3:// sources.
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise SourceUnavailable("s3:// sources need boto3: pip install 'ingest[s3]'") from None
    # A bucket that does not answer fails the sync in seconds, not minutes.
    config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})
    return boto3.client("s3", endpoint_url=endpoint_url or None, config=config)


def listing_for(location: str, *, endpoint_url: str | None) -> FolderListing | S3Listing:
    if location.startswith(S3_SCHEME):
        return S3Listing(location, endpoint_url=endpoint_url)
    return FolderListing(location)
