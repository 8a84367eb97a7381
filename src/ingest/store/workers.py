"""The worker registry: who runs jobs, where, and when each last said so."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.store.engine import read_transaction, write_transaction
from ingest.store.schema import workers


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    hostname: str
    pid: int
    queues: list[str]
    concurrency: int
    running: int
    started_at: float
    heartbeat_age_s: float
    live: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "hostname": self.hostname,
            "pid": self.pid,
            "queues": self.queues,
            "concurrency": self.concurrency,
            "running": self.running,
            "started_at": self.started_at,
            "heartbeat_age_s": self.heartbeat_age_s,
            "live": self.live,
        }


class WorkerRegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(
        self, worker_id: str, *, hostname: str, pid: int, queues: Sequence[str], concurrency: int
    ) -> None:
        now = time.time()
        with write_transaction(self.engine) as conn:
            conn.execute(workers.delete().where(workers.c.id == worker_id))
            conn.execute(
                workers.insert().values(
                    id=worker_id,
                    hostname=hostname,
                    pid=pid,
                    queues=",".join(queues),
                    concurrency=concurrency,
                    running=0,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    def heartbeat(self, worker_id: str, running: int) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.update(workers)
                .where(workers.c.id == worker_id)
                .values(heartbeat_at=time.time(), running=running)
            )

    def stopped(self, worker_id: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.update(workers).where(workers.c.id == worker_id).values(stopped_at=time.time())
            )

    def list(self, *, stale_after: float) -> list[WorkerInfo]:
        """Registered workers, newest first, each marked live or not."""
        now = time.time()
        with read_transaction(self.engine) as conn:
            rows = conn.execute(sa.select(workers).order_by(workers.c.started_at.desc())).all()
        return [
            WorkerInfo(
                id=r.id,
                hostname=r.hostname,
                pid=r.pid,
                queues=r.queues.split(","),
                concurrency=r.concurrency,
                running=r.running,
                started_at=r.started_at,
                heartbeat_age_s=round(now - r.heartbeat_at, 1),
                live=r.stopped_at is None and now - r.heartbeat_at < stale_after,
            )
            for r in rows
        ]

    def prune(self, older_than: float) -> int:
        with write_transaction(self.engine) as conn:
            result = conn.execute(workers.delete().where(workers.c.heartbeat_at < older_than))
        return int(result.rowcount or 0)
