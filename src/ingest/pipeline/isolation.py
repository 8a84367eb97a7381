"""Parsing in a separate process with time and memory limits.

A parser is third-party code fed untrusted bytes: it may hang on a crafted PDF
or balloon on a zip bomb. Running it in a pebble process pool lets us kill it
at a deadline, and an address-space limit set in the child turns runaway
allocation into a MemoryError there, so only that one job fails. While the parent
waits, the child's OCR progress (page 3 of 10) reaches the job through a pipe
(pipeline/parse_progress.py); a cancel or stop of the job kills the child.
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessFuture, ProcessPool

from ingest.errors import DocumentRejected, IngestError, ParseOutOfMemory, ParseTimeout
from ingest.pipeline.containers import Expansion, expand_container
from ingest.pipeline.parse_progress import (
    ChildReporter,
    ParseProgressCallback,
    ProgressChannel,
    install_child_end,
)
from ingest.pipeline.segments import ContainerLimits, ParseLimits, Segment

T = TypeVar("T")


def _limit_memory(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _start_child(memory_mb: int, progress: Connection) -> None:
    _limit_memory(memory_mb)
    install_child_end(progress)


def _parse_in_child(token: str, data: bytes, filename: str, limits: ParseLimits) -> list[Segment]:
    # Imported in the child only: the worker process itself never parses.
    from ingest.pipeline.parsers import parse_document

    report = ChildReporter(token)
    try:
        return _in_child(lambda: parse_document(data, filename, limits, report))
    finally:
        report.end()


def _expand_in_child(
    data: bytes, filename: str, limits: ContainerLimits, spill_dir: str
) -> Expansion:
    return _in_child(lambda: expand_container(data, filename, limits, Path(spill_dir)))


def _in_child(work: Callable[[], T]) -> T:
    try:
        return work()
    except MemoryError:
        # Re-raise as our own type: a MemoryError pickled back might not survive the trip.
        raise ParseOutOfMemory("parsing needed more memory than allowed") from None
    except IngestError as exc:
        # parse_document reports any library exception as a corrupt file, a
        # MemoryError from the address-space limit included: that is not the file's
        # fault. Only here, before pickling drops __cause__, can it still be seen.
        if _caused_by_memory(exc):
            raise ParseOutOfMemory("parsing needed more memory than allowed") from None
        raise


def _caused_by_memory(exc: BaseException) -> bool:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        if isinstance(current, MemoryError):
            return True
        chain.append(current)
        current = current.__cause__ or current.__context__
    return False


class IsolatedParser:
    def __init__(
        self,
        *,
        workers: int,
        timeout_s: float,
        memory_mb: int,
        limits: ParseLimits,
        containers: ContainerLimits | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._memory_mb = memory_mb
        self._limits = limits
        self._containers = containers or ContainerLimits()
        # spawn, not fork: the parent holds threads and a loaded model.
        context = multiprocessing.get_context("spawn")
        self._progress = ProgressChannel(context)
        self._pool = ProcessPool(
            max_workers=workers,
            max_tasks=200,
            initializer=_start_child,
            initargs=(memory_mb, self._progress.child_end),
            context=context,
        )

    def parse(
        self, data: bytes, filename: str, on_progress: ParseProgressCallback | None = None
    ) -> list[Segment]:
        """`on_progress` is called in this thread, while the child parses; what it
        raises (the job was cancelled) kills the child and propagates."""
        with self._progress.subscribe() as subscription:
            future = self._pool.submit(
                _parse_in_child, self._timeout_s, subscription.token, data, filename, self._limits
            )
            try:
                subscription.relay(future, on_progress or _ignore, _child_ran)
            except BaseException:
                future.cancel()  # type: ignore[no-untyped-call]  # a running task: pebble stops its process
                raise
        segments: list[Segment] = self._result(future)
        return segments

    def expand(self, data: bytes, filename: str, spill_dir: Path) -> Expansion:
        """A container's members, spilled under `spill_dir`, within the same time and
        memory limits as a parse."""
        future = self._pool.submit(
            _expand_in_child, self._timeout_s, data, filename, self._containers, str(spill_dir)
        )
        expansion: Expansion = self._result(future)
        return expansion

    def _result(self, future: ProcessFuture[Any]) -> Any:
        try:
            return future.result()
        except FutureTimeout:
            raise ParseTimeout(
                f"parsing took longer than {self._timeout_s:g} s and was stopped "
                "(INGEST_PARSE_TIMEOUT_SECONDS)"
            ) from None
        except ParseOutOfMemory:
            raise ParseOutOfMemory(
                f"parsing needed more than {self._memory_mb} MB of memory and was stopped "
                "(INGEST_PARSE_MEMORY_MB)"
            ) from None
        except MemoryError:
            raise ParseOutOfMemory(
                f"parsing needed more than {self._memory_mb} MB of memory and was stopped "
                "(INGEST_PARSE_MEMORY_MB)"
            ) from None
        except ProcessExpired as exc:
            raise DocumentRejected(
                f"the parser process died (exit code {exc.exitcode}); "
                f"the file may be malformed or need more than {self._memory_mb} MB"
            ) from None
        except IngestError:
            raise

    def close(self) -> None:
        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join(timeout=5)
        self._progress.close()


def _ignore(_: object) -> None:
    return None


def _child_ran(future: Future[Any]) -> bool:
    """Whether the child ran the parse to its end (a result or its own error): then
    its end-of-parse line is on its way. Not when it was killed or cancelled."""
    if future.cancelled():
        return False
    return not isinstance(future.exception(), FutureTimeout | ProcessExpired)
