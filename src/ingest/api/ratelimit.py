"""Rate limits with the `limits` library: per API key, and per (key prefix, client
IP) for failed authentication. Counters live in Redis when REDIS_URL is set, so
every API replica enforces one shared limit; in memory otherwise."""

from __future__ import annotations

import logging
import math
import time
from typing import cast

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)


class RateLimits:
    def __init__(self, *, per_key: str, auth_failures: str, redis_url: str | None) -> None:
        self._storage = cast(
            Storage, storage_from_string(redis_url) if redis_url else MemoryStorage()
        )
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._per_key: RateLimitItem = parse(per_key)
        self._auth_failures: RateLimitItem = parse(auth_failures)

    def _hit(self, item: RateLimitItem, *identifiers: str) -> int | None:
        """Count one request; None if allowed, else seconds until one is allowed.

        If the counter store (Redis) is unreachable the request is let through: an
        outage of the doorbell must not take search and uploads down with it."""
        try:
            if self._limiter.hit(item, *identifiers):
                return None
            stats = self._limiter.get_window_stats(item, *identifiers)
        except Exception as exc:
            _warn_unlimited(exc)
            return None
        return max(1, math.ceil(stats.reset_time - time.time()))

    def hit_key(self, key_id: str) -> int | None:
        return self._hit(self._per_key, "key", key_id)

    def hit_auth_failure(self, client_ip: str, key_prefix: str) -> int | None:
        """Count a failed authentication with a key starting `key_prefix` from this
        address: None while within the budget, else seconds until the next try.

        Per prefix, not per address alone: a client stuck on a bad key must not lock
        out the good keys sent from the same address (a NAT, a proxy, one host)."""
        return self._hit(self._auth_failures, "authfail", client_ip, key_prefix)


_last_warning = 0.0


def _warn_unlimited(exc: Exception) -> None:
    global _last_warning
    if time.monotonic() - _last_warning > 30:  # once per 30 s, not once per request
        _last_warning = time.monotonic()
        log.warning("rate-limit store unavailable (%s); requests are not being limited", exc)
