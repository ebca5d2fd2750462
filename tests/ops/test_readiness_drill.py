"""/readyz of a real server process whose PostgreSQL and then Redis become unreachable (a TCP proxy in
front of the shared services is closed, never the services themselves) and come back."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from django.db import connection

from tests.s3_server import free_port

from .tcp_proxy import TcpProxy
from .test_shutdown import Uvicorn, _env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]


def _readyz(url: str) -> requests.Response:
    return requests.get(f"{url}/readyz", timeout=15)


def _wait_ready(url: str, timeout: float = 30) -> requests.Response:
    """Back to 200 within a few probes, as a load balancer would see it (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        response = _readyz(url)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_readyz_names_the_database_then_redis_while_unreachable_and_is_200_when_they_are_back(tmp_path):
    db = connection.settings_dict
    pg = TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)).open()
    redis_url = urlsplit(settings.REDIS_URL)
    rd = TcpProxy(redis_url.hostname, redis_url.port or 6379).open()
    port = free_port()
    env = _env(port)
    env["DATABASE_URL"] = f"postgres://{db['USER']}@127.0.0.1:{pg.port}/{db['NAME']}"
    env["REDIS_URL"] = f"redis://127.0.0.1:{rd.port}{redis_url.path or '/0'}"
    server = Uvicorn(port=port, env=env, log_path=tmp_path / "server.log").start()
    try:
        up = _wait_ready(server.url)
        assert up.status_code == 200, up.text
        assert up.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}

        pg.close()
        down = _readyz(server.url)
        assert down.status_code == 503, down.text
        error = down.json()["error"]
        assert error["code"] == "not_ready"
        assert error["details"]["failing"] == ["database"]
        assert "database" in error["message"]
        assert error["details"]["checks"]["redis"] == "ok"
        # Liveness is not readiness: the process still answers.
        assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200

        pg.open()
        back = _wait_ready(server.url)
        assert back.status_code == 200, back.text

        rd.close()
        down = _readyz(server.url)
        assert down.status_code == 503, down.text
        assert down.json()["error"]["details"]["failing"] == ["redis"]

        rd.open()
        back = _wait_ready(server.url)
        assert back.status_code == 200, back.text
    finally:
        server.kill()
        pg.close()
        rd.close()
    # Probes write no access-log lines, and an outage is one warning per probe naming the check, not an error.
    output = server.output()
    assert "GET /readyz" not in output
    assert "Service Unavailable" not in output
    assert "Readiness: database unreachable" in output and "Readiness: Redis unreachable" in output
