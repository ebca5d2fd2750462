"""Each test session keeps its Redis keys under its own prefix (tests/settings.py) and a test's cleanup
deletes only those: two sessions sharing a Redis database (the same REDIS_URL, or nearby ones) never
empty each other's rate-limit counters or broker queue, as `cache.clear()` (FLUSHDB) did."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from deplite import health
from deplite.celery import app as celery_app
from integrations.tasks import chat_link_tokens_purge

from .conftest import clear_own_redis_keys

pytestmark = pytest.mark.redis


@pytest.fixture
def client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def anothers_keys(client):
    """What another session, and a server outside the tests, keep in the same database."""
    keys = {
        "deplite-test-0therse55ion:1:ratelimit": b"7",
        "deplite-test-0therse55ion:celery": b"msg",
        "deplite:1:ratelimit": b"2",
    }
    assert not any(client.exists(k) for k in keys)
    client.mset(keys)
    yield keys
    client.delete(*keys)


def test_the_cleanup_deletes_this_sessions_keys_and_nobody_elses(client, anothers_keys):
    assert settings.REDIS_KEY_PREFIX.startswith("deplite-test-") and settings.REDIS_KEY_PREFIX != "deplite"
    cache.set("counter", 3)
    assert client.exists(f"{settings.REDIS_KEY_PREFIX}:1:counter")
    assert clear_own_redis_keys() >= 1
    assert cache.get("counter") is None
    assert {k: client.get(k) for k in anothers_keys} == anothers_keys


def test_the_broker_queue_is_this_sessions_own_and_the_status_counts_it(client, anothers_keys):
    assert health.broker_queue_depth() == 0
    celery_app.conf.task_always_eager = False  # the autouse fixture puts it back
    chat_link_tokens_purge.apply_async(retry=False)
    assert client.llen(f"{settings.CELERY_BROKER_KEY_PREFIX}celery") == 1
    assert health.broker_queue_depth() == 1
    clear_own_redis_keys()
    assert health.broker_queue_depth() == 0
    assert {k: client.get(k) for k in anothers_keys} == anothers_keys
