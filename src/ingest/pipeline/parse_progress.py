"""Progress from inside a parse: which page (frame, picture, slide) OCR is reading.

A parse may run for minutes on a scan, inside the isolated child process
(pipeline/isolation.py). The parsers report `ParseProgress` through a plain
callback; in the child that callback writes one line per event to a pipe shared
by the pool's children, and the parent reads it and hands each event to the job
that waits on that parse (`ProgressChannel`). Without isolation the parser calls
the job's callback directly: the interface is the same.

Each event is one `os.write` of a short line (under PIPE_BUF): the kernel keeps it
whole, so children share the pipe without a lock, and a child killed at its time
limit can neither leave half a line nor hold a lock the others would wait on.
"""

from __future__ import annotations

import os
import queue
import select
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal, get_args

OcrUnit = Literal["page", "image", "picture", "slide"]
_UNITS: frozenset[str] = frozenset(get_args(OcrUnit))


@dataclass(frozen=True, slots=True)
class ParseProgress:
    """`done` of `total` units finished; OCR of unit `done + 1` starts (or, when
    done == total, OCR of the document is over)."""

    done: int
    total: int
    unit: OcrUnit


ParseProgressCallback = Callable[[ParseProgress], None]

# After the child's result, its last events may still be in the pipe: wait this long
# at most for its end-of-parse line (it is written before the result is sent).
_TAIL_WAIT_S = 2.0
_LINE_MAX = select.PIPE_BUF  # atomic on a pipe: never interleaved with another child's
_STOP = b"stop"
_END = "end"


# --- the child's side ----------------------------------------------------------------

_child_end: Connection | None = None


def install_child_end(connection: Connection) -> None:
    """In a parse child, at start: where its progress lines go."""
    global _child_end
    _child_end = connection


class ChildReporter:
    """The parse callback in the child: one line per event, tagged with the task."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, progress: ParseProgress) -> None:
        self._write(f"{self._token} {progress.done} {progress.total} {progress.unit}")

    def end(self) -> None:
        """The parse is over (result or error): nothing more will follow."""
        self._write(f"{self._token} {_END}")

    def _write(self, line: str) -> None:
        if _child_end is None:
            return
        data = (line + "\n").encode("ascii")
        assert len(data) <= _LINE_MAX
        os.write(_child_end.fileno(), data)


# --- the parent's side ---------------------------------------------------------------

_Event = ParseProgress | Literal["end", "future"]


class Subscription:
    """One parse's events, as they arrive, for the thread that waits on its result."""

    def __init__(self, token: str) -> None:
        self.token = token
        self._events: queue.SimpleQueue[_Event] = queue.SimpleQueue()

    def put(self, event: _Event) -> None:
        self._events.put(event)

    def relay(
        self,
        future: Future[Any],
        on_progress: ParseProgressCallback,
        child_ran: Callable[[Future[Any]], bool],
    ) -> None:
        """Call `on_progress` with each event, in order, until the parse is over: its
        end line read, or its future done without it (the child was killed, or
        never ran: `child_ran` says which). Whatever `on_progress` raises (a cancel)
        propagates; the caller stops the child."""
        future.add_done_callback(lambda _: self._events.put("future"))
        deadline: float | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                return  # the end line never came: stop waiting for it
            if event == "end":
                return
            if event == "future":
                if not child_ran(future):
                    return
                deadline = time.monotonic() + _TAIL_WAIT_S
                continue
            assert isinstance(event, ParseProgress)
            on_progress(event)


class ProgressChannel:
    """The pipe from a pool's parse children to this process, and the thread that
    routes each line to the parse it belongs to."""

    def __init__(self, context: Any) -> None:
        self._reader, self._writer = context.Pipe(duplex=False)
        self._lock = threading.Lock()
        self._subscriptions: dict[str, Subscription] = {}
        self._thread = threading.Thread(target=self._pump, name="parse-progress", daemon=True)
        self._thread.start()

    @property
    def child_end(self) -> Connection:
        """Passed to each child at its start (pickled by the spawn, fd and all)."""
        writer: Connection = self._writer
        return writer

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        subscription = Subscription(uuid.uuid4().hex)
        with self._lock:
            self._subscriptions[subscription.token] = subscription
        try:
            yield subscription
        finally:
            with self._lock:
                del self._subscriptions[subscription.token]

    def close(self) -> None:
        """Stop the reading thread (children may still hold the write end)."""
        if self._thread.is_alive():
            os.write(self._writer.fileno(), _STOP + b"\n")
            self._thread.join(timeout=5)
        self._reader.close()
        self._writer.close()

    def _pump(self) -> None:
        fd = self._reader.fileno()
        pending = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if line == _STOP:
                    return
                self._route(line)

    def _route(self, line: bytes) -> None:
        parsed = _decode(line)
        if parsed is None:
            return
        token, event = parsed
        with self._lock:
            subscription = self._subscriptions.get(token)
        if subscription is not None:  # else its parse is over: a late line
            subscription.put(event)


def _decode(line: bytes) -> tuple[str, _Event] | None:
    fields = line.decode("ascii", "replace").split(" ")
    if len(fields) == 2 and fields[1] == _END:
        return fields[0], "end"
    if len(fields) != 4 or fields[3] not in _UNITS:
        return None
    token, done, total, unit = fields
    try:
        return token, ParseProgress(int(done), int(total), unit)  # type: ignore[arg-type]
    except ValueError:
        return None
