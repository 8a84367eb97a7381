"""What `ingest add` says while it follows its jobs, beside the follow loop.

On a terminal the progress bar shows the run. Without one (`| tee log`, CI, cron) a
bar prints nothing, so the watcher prints a line per finished document, and a line
every so often while nothing finishes, so a long run is never silent. In queue mode
it also says, within seconds, when no live worker takes the jobs: else the command
would wait forever in silence.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from ingest.store import Job
from ingest.store.workers import WorkerInfo
from ingest.vocabulary import JobStatus, Queue

if TYPE_CHECKING:
    from ingest.context import Context

POLL_S = 1.0
STILL_WORKING_EVERY_S = 30.0
# Job ids whose status a follow loop reads per second at most (read_interval).
IDS_READ_PER_S = 2_000


def read_interval(pending: int, floor: float) -> float:
    """Seconds between two reads of the status of `pending` jobs: at least `floor`,
    longer for a large run, so that following it costs a flat share of a core (a read
    of 5,000 ids costs ~30 ms of CPU on SQLite, and a 5,000-file run read them ten
    times a second with a bar, in the `ingest add` process beside its worker)."""
    return max(floor, pending / IDS_READ_PER_S)


class RunWatcher:
    """A thread that reads the run's jobs from the ledger and tells the user."""

    def __init__(
        self,
        ctx: Context,
        job_ids: Sequence[str],
        console: Console,
        *,
        lines: bool,
        watch_workers: bool = False,
        queue: str = Queue.INGEST,
        poll_s: float = POLL_S,
        still_working_every_s: float = STILL_WORKING_EVERY_S,
    ) -> None:
        self.ctx = ctx
        self.job_ids = list(job_ids)
        self.console = console
        self.lines = lines
        self.watch_workers = watch_workers
        self.queue = queue
        self._worker_seen: bool | None = None  # unknown until the first look
        self.poll_s = poll_s
        self.still_working_every_s = still_working_every_s
        self._reported: set[str] = set()
        self._last_line = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="add-watcher", daemon=True)

    @property
    def active(self) -> bool:
        return (self.lines or self.watch_workers) and bool(self.job_ids)

    def __enter__(self) -> RunWatcher:
        if self.active:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.active:
            return
        self._stop.set()
        self._thread.join()
        if exc_type is None and self.watch_workers and self._worker_seen is False:
            # Said "no live worker" and the run ended before the next look: a small
            # document takes a worker well under a poll. Say which worker came.
            self._check_workers()
        if exc_type is None and self.lines:
            self._poll()  # the last documents of the run get their line too

    def _run(self) -> None:
        while True:
            try:
                if self.watch_workers:
                    self._check_workers()
                if self.lines:
                    self._poll()
            except Exception as exc:  # a busy database: say so, try again next tick
                self._say(f"(could not read the jobs' progress: {exc})")
            waiting = len(self.job_ids) - len(self._reported)
            if self._stop.wait(read_interval(waiting, self.poll_s)):
                return

    def _check_workers(self) -> None:
        """Say when no live worker takes the queue, and when one comes."""
        live = live_workers(self.ctx, self.queue)
        if live and self._worker_seen is False:
            self._say(f"worker {live[0].id} is live; following the jobs")
        elif not live and self._worker_seen is not False:
            self._say(no_worker_message(len(self.job_ids), self.queue))
        self._worker_seen = bool(live)

    def _poll(self) -> None:
        """Read whole only the jobs that ended since the last look: the others are two
        small columns each (a 1,000-file run read every job whole each second, 80 ms
        of CPU a look, holding the GIL the worker's threads need)."""
        waiting = [j for j in self.job_ids if j not in self._reported]
        moving = self.ctx.ledger.unfinished(waiting)
        for job in self.ctx.ledger.get_many([j for j in waiting if j not in moving]):
            self._reported.add(job.id)
            self._say(f"[{len(self._reported)}/{len(self.job_ids)}] {finished_line(job)}")
        if time.monotonic() - self._last_line >= self.still_working_every_s:
            running_id = next((j for j, s in moving.items() if s == JobStatus.RUNNING), None)
            running = self.ctx.ledger.get(running_id) if running_id else None
            done = len(self.job_ids) - len(moving)
            self._say(still_working_line(done, len(self.job_ids), running))

    def _say(self, line: str) -> None:
        self.console.print(escape(line), highlight=False, soft_wrap=True)
        self._last_line = time.monotonic()


def finished_line(job: Job) -> str:
    source = str(job.payload.get("source_uri", job.id))
    result = job.result or {}
    if job.status == JobStatus.SUCCEEDED:
        return f"{result.get('outcome', 'added')} {source} ({result.get('chunks', 0)} chunks)"
    return f"{job.status} {source}: {job.error_message or job.status}"


def still_working_line(done: int, total: int, running: Job | None) -> str:
    if running is None:
        return f"... {done}/{total} done; the rest wait in the queue"
    name = running.payload.get("filename", running.id)
    stage = running.stage or "starting"
    return f"... {done}/{total} done; running {name}: {stage} {running.progress:.0%}"


def live_workers(ctx: Context, queue: str) -> list[WorkerInfo]:
    stale_after = ctx.settings.worker_stale_seconds
    return [
        w for w in ctx.store.workers.list(stale_after=stale_after) if w.live and queue in w.queues
    ]


def no_worker_message(jobs: int, queue: str) -> str:
    return (
        f"no live worker takes the {queue} queue: {jobs} job(s) wait queued. Start one "
        "where it sees this database, Redis and INGEST_INCOMING_DIR: "
        f"`python -m ingest.worker --queues {queue}` (or `ingest worker`). "
        "Ctrl-C stops waiting (the jobs stay queued); --no-wait does not wait."
    )


def say_interrupted(
    ctx: Context, console: Console, jobs: Sequence[Job], handed_back: Sequence[str], *, rerun: str
) -> None:
    """Ctrl-C: say where every job of the run stands. `rerun`: what runs them again."""
    current = ctx.ledger.get_many([j.id for j in jobs])
    waiting = [j for j in current if not j.is_terminal]
    finished = f"interrupted: {len(current) - len(waiting)} of {len(jobs)} job(s) finished"
    if ctx.settings.mode == "inline":
        console.print(
            escape(
                f"{finished}; {len(handed_back)} running job(s) handed back to the queue, "
                f"{len(waiting)} in all wait queued. {rerun} runs them (or `ingest worker`)."
            ),
            highlight=False,
            soft_wrap=True,
        )
        sources = {j.id: str(j.payload.get("source_uri", j.kind)) for j in current}
        for job_id in handed_back:
            console.print(
                escape(f"  handed back {sources.get(job_id, job_id)}"),
                highlight=False,
                soft_wrap=True,
            )
    else:
        running = sum(j.status == JobStatus.RUNNING for j in waiting)
        console.print(
            f"{finished}; the other {len(waiting)} ({running} running) stay in the queue "
            "for the workers: `ingest jobs list` follows them.",
            highlight=False,
            soft_wrap=True,
        )
