"""Waking agents that wait in a long poll: a message on the org's Redis pub/sub channel.

The database is the source of truth; a wake-up only says "look again". A lost one costs
latency, never a job: waiting agents also re-check on their own, and the sweeper
re-publishes for jobs that stay queued.
"""

from __future__ import annotations

import logging
import uuid

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "deplite:agent-wake:"
# A wake-up that cannot be published in this time is dropped (the sweeper catches up).
PUBLISH_TIMEOUT_SECONDS = 1.0

_client: redis.Redis | None = None


def channel_for_org(org_id: uuid.UUID | str) -> str:
    return f"{CHANNEL_PREFIX}{org_id}"


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=PUBLISH_TIMEOUT_SECONDS,
            socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS,
        )
    return _client


def publish_jobs_available(*, org_id: uuid.UUID | str) -> int:
    """Tell the org's waiting agents to try a claim. Returns how many listeners got it."""
    if not settings.REDIS_URL:
        return 0  # embedded default: waiting agents poll the database instead
    return int(_redis().publish(channel_for_org(org_id), b"jobs"))
