"""Staging in a folder (INGEST_INCOMING_DIR) that every API and worker mounts."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ingest.errors import DocumentRejected
from ingest.staging import JOB_ID, StagedFile, copy_bounded, sanitize_filename


class FilesystemStaging:
    """`<INGEST_INCOMING_DIR>/<job id>/<safe name>`, fsync'd before the job commits.
    Locations are relative, so each process resolves them against its own mount."""

    name = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root

    def owns(self, location: str) -> bool:
        return "://" not in location

    def put(self, stream: IO[bytes], job_id: str, filename: str, *, max_bytes: int) -> StagedFile:
        folder = self.root.resolve() / job_id
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / sanitize_filename(filename)
        try:
            with target.open("wb") as out:
                size, sha256 = copy_bounded(stream, out, max_bytes)
                out.flush()
                os.fsync(out.fileno())
            _fsync_dir(folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return StagedFile(f"{job_id}/{target.name}", size, sha256)

    def resolve(self, location: str) -> Path:
        """The file a relative location names; never one outside the folder."""
        root = self.root.resolve()
        path = (root / location).resolve()
        if root not in path.parents:
            raise DocumentRejected("staged file path escapes INGEST_INCOMING_DIR")
        return path

    @contextmanager
    def fetch(self, location: str, *, max_bytes: int) -> Iterator[Path]:
        # The file is already local: the pipeline bounds what it reads of it.
        path = self.resolve(location)
        if not path.is_file():
            # As for an S3 object that is gone: no retry brings the bytes back, so the
            # job fails now with the reason instead of dying of an OS error later.
            raise DocumentRejected(f"the staged file {path} is gone")
        yield path

    def remove(self, location: str) -> None:
        try:
            path = self.resolve(location)
        except DocumentRejected:
            return
        path.unlink(missing_ok=True)
        _remove_empty_parent(path.parent, self.root.resolve())

    def discard(self, job_id: str) -> None:
        shutil.rmtree(self.root.resolve() / job_id, ignore_errors=True)

    def exists(self, location: str) -> bool:
        try:
            return self.resolve(location).exists()
        except DocumentRejected:
            return False

    def staged_jobs(self) -> Iterator[tuple[str, float]]:
        root = self.root.resolve()
        if not root.is_dir():
            return
        for entry in root.iterdir():
            # Only our own job folders: files a client placed here are theirs.
            if not (JOB_ID.fullmatch(entry.name) and entry.is_dir()):
                continue
            try:
                times = [entry.stat().st_mtime] + [f.stat().st_mtime for f in entry.iterdir()]
            except FileNotFoundError:  # removed meanwhile
                continue
            yield entry.name, max(times)

    def check_ready(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.root, prefix=".ready-"):
            pass
        return str(self.root)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_empty_parent(folder: Path, root: Path) -> None:
    if folder == root or root not in folder.parents:
        return
    try:
        empty = not any(folder.iterdir())
    except FileNotFoundError:  # already gone (another cleanup, a discarded duplicate)
        return
    if empty:
        shutil.rmtree(folder, ignore_errors=True)
