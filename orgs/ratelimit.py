"""Fixed-window rate limits kept in the cache (Redis in production).

Used for failed logins and failed token authentication, keyed by client IP. When the
cache is unreachable the limiter fails open (and says so in the log): an outage of Redis
must not turn every authenticated API call into a 500.
"""

from __future__ import annotations

import logging
import time

import redis
from django.core.cache import cache

logger = logging.getLogger(__name__)

_CACHE_DOWN = (redis.RedisError, OSError)


def client_ip(request) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy
    # rewrites it, and a limiter keyed on it could be dodged by sending a new one.
    return request.META.get("REMOTE_ADDR") or None


def _key(scope: str, ident: str, window: int) -> str:
    return f"rl:{scope}:{ident}:{int(time.time() // window)}"


def is_limited(scope: str, ident: str, rate: tuple[int, int]) -> bool:
    limit, window = rate
    try:
        return (cache.get(_key(scope, ident, window)) or 0) >= limit
    except _CACHE_DOWN as exc:
        logger.warning("Rate limiter cannot reach the cache (%s); not limiting %s", type(exc).__name__, scope)
        return False


def hit(scope: str, ident: str, rate: tuple[int, int]) -> int:
    _limit, window = rate
    key = _key(scope, ident, window)
    try:
        if cache.add(key, 1, timeout=window + 1):
            return 1
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window + 1)
            return 1
    except _CACHE_DOWN as exc:
        logger.warning("Rate limiter cannot reach the cache (%s); not counting %s", type(exc).__name__, scope)
        return 0
