"""The on-disk model cache: where built ONNX graphs and weight-hash verdicts live,
and the two ways several processes share it safely (an exclusive lock while one of
them builds, and files that appear whole by an atomic rename)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

HASH_BLOCK = 1 << 20


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/ingest, else ~/.cache/ingest."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ingest"


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an advisory lock on `lock_path` (created if missing): a second process
    asking for the same lock waits, then finds the work already done."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` fills a temporary file beside `target`, which is then renamed
    over it: a reader sees no file or the whole file, never half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); a cache may be shared by users.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


class DigestCache:
    """SHA-256 of large files, remembered by (path, size, mtime): hashing 90 MB of
    weights costs ~0.3 s of CPU that a one-shot command should not pay each time.
    A file rewritten in place gets a new mtime, hence a fresh hash."""

    def __init__(self, cache_dir: Path) -> None:
        self._dir = cache_dir / "digests"

    def sha256(self, path: Path) -> str:
        path = path.resolve()
        stat = path.stat()
        key = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        record = self._dir / (hashlib.sha256(str(path).encode()).hexdigest()[:32] + ".json")
        remembered = _read_json(record)
        if remembered is not None and all(remembered.get(k) == v for k, v in key.items()):
            return str(remembered["sha256"])
        digest = sha256_of(path)
        payload = json.dumps({**key, "sha256": digest}).encode()
        with contextlib.suppress(OSError):  # a read-only cache costs the hash next time
            write_atomically(record, lambda tmp: tmp.write_bytes(payload))
        return digest


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
