"""Fault drills (marker `drill`): each module starts its own PostgreSQL and Redis, and a real Deplite server
and worker on them, and then breaks them. The shared PostgreSQL and Redis are never touched."""

from __future__ import annotations

import pytest

from .services import OwnPostgres, OwnRedis


@pytest.fixture(autouse=True)
def _isolated_cache_and_eager_tasks():
    """Overrides the suite-wide fixture: the drill's processes run the tasks, and this process's cache (the
    shared Redis) has nothing to do with them."""
    yield


@pytest.fixture(scope="module")
def own_postgres():
    pg = OwnPostgres()
    try:
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="module")
def own_redis():
    redis = OwnRedis()
    try:
        yield redis
    finally:
        redis.kill()
