"""Waking workers when a job is enqueued.

The ledger in SQL is the truth; the doorbell only saves latency. In queue mode
the job id is LPUSHed onto a Redis list after the commit and workers BLPOP it;
when Redis loses the message (restart, FLUSHALL) workers still find the job by
polling SQL every INGEST_POLL_SECONDS. Inline, an in-process Event does the same.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger(__name__)


class Doorbell(Protocol):
    def ring(self, queue: str, job_id: str) -> None: ...

    def wait(self, queues: Sequence[str], timeout: float) -> None: ...

    def close(self) -> None: ...


class InProcessDoorbell:
    def __init__(self) -> None:
        self._event = threading.Event()

    def ring(self, queue: str, job_id: str) -> None:
        self._event.set()

    def wait(self, queues: Sequence[str], timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()

    def close(self) -> None:
        self._event.set()


class RedisDoorbell:
    def __init__(self, redis_url: str, *, prefix: str = "ingest:queue:") -> None:
        import redis

        self._redis = redis.Redis.from_url(
            redis_url, socket_timeout=30, socket_connect_timeout=5, health_check_interval=15
        )
        self._prefix = prefix
        self._local = InProcessDoorbell()

    def ring(self, queue: str, job_id: str) -> None:
        self._local.ring(queue, job_id)
        try:
            self._redis.lpush(self._prefix + queue, job_id)
        except Exception as exc:  # Redis down: workers will still poll SQL
            log.warning(
                "could not push job %s to Redis (%s); workers will poll for it", job_id, exc
            )

    def wait(self, queues: Sequence[str], timeout: float) -> None:
        keys = [self._prefix + q for q in queues]
        started = time.monotonic()
        try:
            # BLPOP takes whole seconds on old servers; fractions work on Redis >= 6.
            self._redis.blpop(keys, timeout=max(timeout, 0.01))
        except Exception as exc:
            log.warning("Redis unavailable (%s); polling SQL instead", exc)
            remaining = timeout - (time.monotonic() - started)
            if remaining > 0:
                self._local.wait(queues, remaining)

    def close(self) -> None:
        self._local.close()
        self._redis.close()
