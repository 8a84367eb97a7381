"""Conversation memory with bounded history: Redis when REDIS_URL is set (shared by
every API replica), SQL otherwise.

Redis memory fails open, as the rate limits do: while Redis is down a chat still
answers, from the documents alone, and the turn is not remembered."""

from __future__ import annotations

import json
import logging
from typing import Protocol

from ingest.store.access import Access

log = logging.getLogger(__name__)
_TTL_S = 7 * 24 * 3600


class ConversationMemory(Protocol):
    def history(self, session_id: str) -> list[dict[str, str]]: ...

    def append(self, session_id: str, role: str, content: str) -> None: ...


class SqlMemory:
    def __init__(self, access: Access, keep: int) -> None:
        self._access = access
        self._keep = keep

    def history(self, session_id: str) -> list[dict[str, str]]:
        return self._access.messages(session_id, self._keep) if self._keep else []

    def append(self, session_id: str, role: str, content: str) -> None:
        if self._keep:
            self._access.append_message(session_id, role, content, self._keep)


class RedisMemory:
    def __init__(self, redis_url: str, keep: int, prefix: str = "ingest:chat:") -> None:
        import redis

        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        self._redis_errors = (redis.ConnectionError, redis.TimeoutError)
        self._keep = keep
        self._prefix = prefix

    def history(self, session_id: str) -> list[dict[str, str]]:
        if not self._keep:
            return []
        try:
            raw = self._redis.lrange(self._prefix + session_id, -self._keep, -1)
        except self._redis_errors as exc:
            log.warning("chat memory unavailable, answering without history: %s", exc)
            return []
        return [json.loads(item) for item in raw]

    def append(self, session_id: str, role: str, content: str) -> None:
        if not self._keep:
            return
        key = self._prefix + session_id
        pipe = self._redis.pipeline()
        pipe.rpush(key, json.dumps({"role": role, "content": content}))
        pipe.ltrim(key, -self._keep, -1)
        pipe.expire(key, _TTL_S)
        try:
            pipe.execute()
        except self._redis_errors as exc:
            log.warning("chat memory unavailable, this turn is not remembered: %s", exc)

    def close(self) -> None:
        self._redis.close()
