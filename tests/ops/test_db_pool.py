"""The pooled-connection check (deplite/postgresql/base.py): no round trip for a healthy connection, a dead
one replaced before any request sees it. Real PostgreSQL, real psycopg pool."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg_pool import ConnectionPool

from deplite.postgresql.base import check_pooled_connection

# Marked postgres: the conftest fails it in CI when PostgreSQL is missing, and the SQLite run deselects it.
pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("db")]  # the test database exists


def _conninfo() -> str:
    params = connection.get_connection_params()
    # Django's arguments for psycopg.connect() that are not libpq connection options.
    python_only = ("context", "cursor_factory", "prepare_threshold")
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if k not in python_only})


@pytest.fixture
def admin():
    with psycopg.connect(_conninfo(), autocommit=True) as conn:
        yield conn


def _last_activity(admin, pid: int):
    return admin.execute("SELECT state_change FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]


def test_the_settings_use_this_check():
    assert settings.DATABASES["default"]["ENGINE"] == "deplite.postgresql"
    assert connection.pool._check is check_pooled_connection


def test_a_healthy_idle_connection_passes_without_a_round_trip(admin):
    with psycopg.connect(_conninfo(), autocommit=True) as conn:
        conn.execute("SELECT 1")
        pid = conn.info.backend_pid
        before = _last_activity(admin, pid)
        time.sleep(0.05)
        check_pooled_connection(conn)
        assert _last_activity(admin, pid) == before  # PostgreSQL saw nothing

        # The stock check, for contrast, is a statement the server sees.
        ConnectionPool.check_connection(conn)
        assert _last_activity(admin, pid) > before


def test_a_connection_the_server_ended_fails_the_check(admin):
    with psycopg.connect(_conninfo(), autocommit=True) as conn:
        admin.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
        time.sleep(0.2)  # the termination notice and the close reach the idle socket
        with pytest.raises(psycopg.OperationalError):
            check_pooled_connection(conn)


def test_the_pool_replaces_a_terminated_connection_before_handing_it_out(admin):
    pool = ConnectionPool(_conninfo(), min_size=1, max_size=1, check=check_pooled_connection, open=True)
    try:
        with pool.connection() as conn:
            first = conn.info.backend_pid
        admin.execute("SELECT pg_terminate_backend(%s)", [first])
        time.sleep(0.2)
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)  # no error reached the user
            assert conn.info.backend_pid != first
        with pool.connection() as conn:  # healthy now: handed out again as it is
            again = conn.info.backend_pid
            assert conn.execute("SELECT 2").fetchone() == (2,)
        assert again != first
    finally:
        pool.close()
