"""Parsing in a separate process with time and memory limits.

A parser is third-party code fed untrusted bytes: it may hang on a crafted PDF
or balloon on a zip bomb. Running it in a pebble process pool lets us kill it
at a deadline, and an address-space limit set in the child turns runaway
allocation into a MemoryError there, so only that one job fails. While the parent
waits, the child's OCR progress (page 3 of 10) reaches the job through a pipe
(pipeline/parse_progress.py); a cancel or stop of the job kills the child.

Plain text is the exception: a .txt or Markdown file whose bytes are UTF-8 is parsed
inline (decoding and, for Markdown, a line-by-line heading scan with lines capped:
linear work no crafted input can blow up), so a folder of text files never starts a
parser process. Other text (charset guessing) still goes to the child. The pool, its
process and the progress pipe start at the first file that needs them.
"""

from __future__ import annotations

import resource
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ingest.errors import DocumentRejected, IngestError, ParseOutOfMemory, ParseTimeout
from ingest.pipeline.containers import Expansion, expand_container
from ingest.pipeline.filenames import extension_of
from ingest.pipeline.parse_progress import (
    ChildReporter,
    ParseProgressCallback,
    ProgressChannel,
    install_child_end,
)
from ingest.pipeline.segments import ContainerLimits, ParseLimits, Segment

if TYPE_CHECKING:
    from pebble import ProcessFuture, ProcessPool

T = TypeVar("T")

_INLINE_TEXT = frozenset({".txt"})
_INLINE_MARKDOWN = frozenset({".md", ".markdown", ".mdx"})
# Markdown's heading pattern runs per line; lines longer than this go to the child.
_INLINE_MAX_LINE_CHARS = 4096


def parses_inline(data: bytes, filename: str) -> bool:
    """Plain text whose parse is linear and needs no charset guessing: a .txt or
    Markdown file of UTF-8 bytes (a BOM allowed, no NUL), Markdown lines capped."""
    ext = extension_of(filename)
    if ext not in _INLINE_TEXT and ext not in _INLINE_MARKDOWN:
        return False
    if b"\x00" in data or data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16/32 BOMs
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if ext in _INLINE_MARKDOWN:
        return all(len(line) <= _INLINE_MAX_LINE_CHARS for line in text.split("\n"))
    return True


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
        self._workers = workers
        self._pool_lock = threading.Lock()
        self._started: tuple[ProcessPool, ProgressChannel] | None = None
        self._closed = False

    @property
    def _pool(self) -> ProcessPool:
        """The process pool, started at the first file that needs it."""
        return self._start()[0]

    @property
    def _progress(self) -> ProgressChannel:
        return self._start()[1]

    def _start(self) -> tuple[ProcessPool, ProgressChannel]:
        with self._pool_lock:
            if self._started is None:
                if self._closed:
                    raise RuntimeError("the parser pool is closed")
                import multiprocessing

                from pebble import ProcessPool

                # spawn, not fork: the parent holds threads and a loaded model.
                context = multiprocessing.get_context("spawn")
                progress = ProgressChannel(context)
                pool = ProcessPool(
                    max_workers=self._workers,
                    max_tasks=200,
                    initializer=_start_child,
                    initargs=(self._memory_mb, progress.child_end),
                    context=context,
                )
                self._started = (pool, progress)
            return self._started

    def parse(
        self, data: bytes, filename: str, on_progress: ParseProgressCallback | None = None
    ) -> list[Segment]:
        """`on_progress` is called in this thread, while the child parses; what it
        raises (the job was cancelled) kills the child and propagates."""
        if parses_inline(data, filename):
            from ingest.pipeline.parsers import parse_document

            return parse_document(data, filename, self._limits)
        pool, progress = self._start()
        with progress.subscribe() as subscription:
            future = pool.submit(
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
        from pebble import ProcessExpired

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
        with self._pool_lock:
            started, self._started, self._closed = self._started, None, True
        if started is not None:
            pool, progress = started
            pool.stop()  # type: ignore[no-untyped-call]
            pool.join(timeout=5)
            progress.close()


def _ignore(_: object) -> None:
    return None


def _child_ran(future: Future[Any]) -> bool:
    """Whether the child ran the parse to its end (a result or its own error): then
    its end-of-parse line is on its way. Not when it was killed or cancelled."""
    from pebble import ProcessExpired

    if future.cancelled():
        return False
    return not isinstance(future.exception(), FutureTimeout | ProcessExpired)
