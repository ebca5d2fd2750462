"""Waking agents that wait in a long poll: one message on one Redis pub/sub channel.

A wake-up names the org and the labels of the job that became claimable, and carries a
unique id. Each web process holds ONE subscription to the channel (agents.waiters) and
hands the wake-up to exactly one of its waiting claims that can take such a job; the id
lets only one process act on it.

The database is the source of truth; a wake-up only says "look again". A lost one costs
latency, never a job: the sweeper re-publishes for jobs that stay queued.
"""

from __future__ import annotations

import json
import logging
import uuid

import redis
import redis.connection
from django.conf import settings

logger = logging.getLogger(__name__)


def _channel() -> str:
    # Redis pub/sub ignores the database number: two deployments (or two parallel test runs) sharing one
    # Redis on different databases would hear each other's wake-ups. Scoped to the database, as kombu
    # scopes its fanout channels.
    db = redis.connection.parse_url(settings.REDIS_URL).get("db", 0) if settings.REDIS_URL else 0
    return f"deplite:agent-wake:{db}"


CHANNEL = _channel()

# A wake-up that cannot be published in this time is dropped (the sweeper catches up).
PUBLISH_TIMEOUT_SECONDS = 1.0

_client: redis.Redis | None = None
_client_url: str | None = None


def _redis() -> redis.Redis:
    global _client, _client_url
    if _client is None or _client_url != settings.REDIS_URL:
        _client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=PUBLISH_TIMEOUT_SECONDS,
            socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS,
        )
        _client_url = settings.REDIS_URL
    return _client


def publish(*, org_id: uuid.UUID | str, labels: list[str], hops: int = 0) -> int:
    """Publish one wake-up for a job of `org_id` needing `labels`. Returns how many processes heard it."""
    if not settings.REDIS_URL:
        return 0  # embedded default: waiting agents poll the database instead
    message = {"id": uuid.uuid4().hex, "org": str(org_id), "labels": sorted(set(labels or []))}
    if hops:
        message["hops"] = hops
    return int(_redis().publish(CHANNEL, json.dumps(message, separators=(",", ":"))))


def publish_jobs_available(*, org_id: uuid.UUID | str, labels: list[str] | None = None) -> int:
    """Wake one waiting agent of the org that can take a job with these labels."""
    return publish(org_id=org_id, labels=labels or [])
