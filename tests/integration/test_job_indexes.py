"""Queueing a file costs the same behind a long queue: the statements that look for a
document's jobs (its queued twin, its latest job, a newer outcome) read that
document's jobs by index, never every queued job (migration 0013).

Cost is counted in SQLite virtual-machine steps, not seconds: the same on a busy
machine as on a quiet one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from ingest.context import Context


class StepCounter:
    """Counts SQLite virtual-machine steps, ten at a time, while `on`."""

    def __init__(self) -> None:
        self.steps = 0
        self.on = False

    def handler(self) -> int:
        if self.on:
            self.steps += 1
        return 0  # go on


@pytest.fixture
def counted(sqlite_ctx: Context) -> tuple[Context, StepCounter]:
    counter = StepCounter()
    engine = sqlite_ctx.store.engine
    engine.dispose()  # every later connection gets the handler

    @event.listens_for(engine, "connect")
    def _count(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_progress_handler(counter.handler, 10)

    return sqlite_ctx, counter


def _files(folder: Path, start: int, count: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(start, start + count):
        path = folder / f"doc{i}.txt"
        path.write_text(f"document number {i}\n", encoding="utf-8")
        paths.append(path)
    return paths


def _steps_to_queue_one(ctx: Context, counter: StepCounter, path: Path) -> int:
    counter.steps, counter.on = 0, True
    try:
        ctx.submitter.submit_paths([path], collection="default", stage=False)
    finally:
        counter.on = False
    return counter.steps


def test_queueing_a_file_does_not_read_the_whole_queue(
    counted: tuple[Context, StepCounter], tmp_path: Path
) -> None:
    ctx, counter = counted
    docs = tmp_path / "docs"
    ctx.submitter.submit_paths(_files(docs, 0, 100), collection="default", stage=False)
    behind_100 = _steps_to_queue_one(ctx, counter, _files(docs, 100, 1)[0])

    ctx.submitter.submit_paths(_files(docs, 101, 1500), collection="default", stage=False)
    behind_1600 = _steps_to_queue_one(ctx, counter, _files(docs, 1601, 1)[0])

    # 16 times the queue: the cost of one more file must not follow it (reading every
    # queued job made it ~10 times dearer).
    assert behind_1600 < 1.5 * behind_100, (behind_100, behind_1600)
