"""About one message per second per channel, across every worker: a slot schedule in Redis.

Each send reserves the channel's next free slot (max(now, last slot + interval)) in one
atomic script, and the message waits for its slot: a Celery countdown, with the row stamped
with its slot so that the sweeper takes over if that task is lost. Every attempt takes a
slot, retries included.
A burst of 100 results to one channel thus leaves at the channel's pace instead of
hitting Slack's limit and bouncing off 429s; a 429 pushes the channel's schedule back
by its Retry-After so the other deliveries to that channel wait too.

Without Redis (the embedded default, one process) there is nothing to coordinate: no pacing.
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings

logger = logging.getLogger(__name__)


# KEYS[1]: the channel's last reserved slot (seconds, float). ARGV[1]: interval, ARGV[2]: minimum start offset.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now + tonumber(ARGV[2]), last + tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%.6f', slot), 'EX', math.ceil(slot - now) + 60)
return {string.format('%.6f', slot), string.format('%.6f', now)}
"""

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _client


def channel_key(provider: str, channel: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:outbox-pace:{provider}:{channel}"


def reserve_slot(*, provider: str, channel: str, not_before: float = 0.0) -> float:
    """Seconds from now until this send may go (0 when the channel is free). Fails open on a Redis error."""
    if not settings.REDIS_URL:
        return 0.0
    try:
        slot, now = _redis().eval(
            _RESERVE, 1, channel_key(provider, channel), settings.DEPLITE_NOTIFY_CHANNEL_INTERVAL, max(not_before, 0.0)
        )
    except redis.RedisError as exc:
        # Pacing is a courtesy; Slack's 429 (honoured below) is the hard limit.
        logger.warning("Could not reserve a send slot for %s:%s (%s); sending unpaced.", provider, channel, exc)
        return 0.0
    return max(float(slot) - float(now), 0.0)
