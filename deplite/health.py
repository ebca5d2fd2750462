"""Health: `/healthz` (the process answers), `/readyz` (it can serve: database, migrations, Redis),
and the state figures `manage.py deplite_status` and `/metrics` report.

Both endpoints are unauthenticated, touch no session, cache or rate limiter, and are cheap: the
readiness checks borrow a pooled connection with a short timeout and run two small queries, and
ping Redis once; the migrations the code expects are read from disk once per process. Their
INFO access-log lines are dropped (deplite.logs.QuietProbesFilter).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.loader import MigrationLoader
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

# A readiness check that takes longer than this counts as failed: a load balancer's probe
# must get an answer before its own timeout, and a slow database is not ready either.
CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@functools.cache
def _expected_migrations() -> frozenset[tuple[str, str]]:
    """The newest migration of every app, from the code on disk (no database needed)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return frozenset(loader.graph.leaf_nodes())


@contextmanager
def _cursor(alias: str) -> Iterator:
    """A cursor on `alias`, bounded by CHECK_TIMEOUT_SECONDS when the connection is pooled."""
    conn = connections[alias]
    pool = getattr(conn, "pool", None)
    if pool is not None:
        pool.open()
        with pool.connection(timeout=CHECK_TIMEOUT_SECONDS) as raw, raw.cursor() as cursor:
            yield cursor
    else:
        with conn.cursor() as cursor:
            yield cursor


def check_database(alias: str = DEFAULT_DB_ALIAS) -> list[Check]:
    """Two checks: the database answers, and every migration of the code is applied."""
    try:
        applied = _applied_migrations(alias)
    except Exception as exc:  # noqa: BLE001 (any failure to talk to the database means not ready)
        logger.warning("Readiness: database unreachable: %s", type(exc).__name__)
        # Migrations cannot be read either; the database is the check to name.
        return [Check("database", False, f"unreachable ({type(exc).__name__})")]
    missing = sorted(f"{app}.{name}" for app, name in _expected_migrations() - applied)
    if missing:
        return [Check("database", True), Check("migrations", False, f"not applied: {', '.join(missing[:10])}")]
    return [Check("database", True), Check("migrations", True)]


def _applied_migrations(alias: str) -> set[tuple[str, str]]:
    from psycopg_pool import PoolTimeout

    for attempt in (1, 2):
        try:
            with _cursor(alias) as cursor:
                cursor.execute("SELECT app, name FROM django_migrations")
                return {(app, name) for app, name in cursor.fetchall()}
        except PoolTimeout:
            raise  # no connection within the timeout: the answer is in, do not wait twice
        except Exception:
            # An idle pooled connection the server dropped (a restart) is not an outage: the
            # broken connection is discarded and one more try gets a fresh one.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


_redis_clients: dict[str, redis.Redis] = {}


def _redis(url: str) -> redis.Redis:
    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.Redis.from_url(
            url, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
        )
    return client


def check_redis() -> list[Check]:
    """Redis answers a PING (only when REDIS_URL is configured)."""
    if not settings.REDIS_URL:
        return []
    try:
        _redis(settings.REDIS_URL).ping()
    except (redis.RedisError, OSError) as exc:
        logger.warning("Readiness: Redis unreachable: %s", type(exc).__name__)
        return [Check("redis", False, f"unreachable ({type(exc).__name__})")]
    return [Check("redis", True)]


def readiness_checks() -> list[Check]:
    return [*check_database(), *check_redis()]


def _checks_body(checks: list[Check]) -> dict:
    return {c.name: ("ok" if c.ok else c.detail or "failed") for c in checks}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """`GET /healthz`: the process is up and answering. Checks nothing else, on purpose."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """`GET /readyz`: 200 when this process can serve, else 503 naming the failing checks."""
    checks = readiness_checks()
    failing = [c.name for c in checks if not c.ok]
    if not failing:
        return JsonResponse({"status": "ok", "checks": _checks_body(checks)})
    response = JsonResponse(
        {
            "error": {
                "code": "not_ready",
                "message": f"Not ready: {', '.join(failing)} failing.",
                "details": {"failing": failing, "checks": _checks_body(checks)},
            }
        },
        status=503,
    )
    # The failing check already logged a warning; Django's "Service Unavailable" error line on every
    # probe of a load balancer would bury it.
    response._has_been_logged = True
    return response


# --- for deplite_status ----------------------------------------------------------------------------


def broker_queue_depth() -> int | None:
    """Messages waiting in Celery's default queue (a Redis list), or None without Redis."""
    if not settings.REDIS_URL:
        return None
    return int(_redis(settings.REDIS_URL).llen(f"{settings.CELERY_BROKER_KEY_PREFIX}celery"))
