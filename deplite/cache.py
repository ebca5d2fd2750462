"""Django's Redis cache, keeping one client object per connection pool.

Django builds a new `redis.Redis` client for every cache call, and redis-py fills ~170
response callbacks each time it builds one: a third of a millisecond of CPU per call,
paid by every authenticated request (the rate-limit check) and every signed agent request
(the nonce). A client is thread-safe and holds no connection itself, so one per pool does.
"""

from __future__ import annotations

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
