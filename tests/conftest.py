"""Shared fixtures: two orgs, three personas (owner, member, outsider) and API clients.

Services: tests marked `postgres` / `redis` need those servers. Locally they skip when
the server is not configured; with CI set they fail instead, so CI never passes by
skipping.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from deplite.celery import app as celery_app
from orgs.models import Role

from .factories import MembershipFactory, OrganizationFactory, make_token
from .s3_server import admin_client, start_moto

IN_CI = bool(os.environ.get("CI"))


def _missing_service(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not configured or not answering.")
    pytest.skip(f"{what} not configured (set DATABASE_URL / REDIS_URL to run this test).")


# --- the fast loop ------------------------------------------------------------------------------------------
# `make check` runs every test none of these marks; `make test` (CI) runs them all. Marked here, by where a
# test lives or what it uses, so a new test lands in the right loop without anyone remembering a marker.
TESTS_DIR = Path(__file__).resolve().parent
_BY_FOLDER = {"e2e": "e2e", "drills": "drill"}
# Modules that start real processes (web servers, Celery workers and beat, the agent, `make run`) and wait on
# them, or run a whole-tree tool: seconds per test where the rest take milliseconds.
_SLOW_MODULES = {
    "agent_program/test_protocol.py",
    "agent_program/test_reliability.py",
    "agents/test_claim_concurrency.py",
    "agents/test_claim_hang_up.py",
    "agents/test_claim_hub_outages.py",
    "api/test_schema_fuzz.py",
    "notifications/test_worker.py",
    "ops/test_shutdown.py",
    "ops/test_web_abuse.py",
    "ops/test_web_process.py",
    "ops/test_worker_processes.py",
    "test_newcomer.py",
    "test_project_checks.py",
    "test_public_url.py",
}
# `make run` (re)installs the agent's wheel into .venv: the tests that run it, and the one that runs .venv's
# `deplite-agent`, take turns (`make test` schedules with --dist loadgroup: one group, one worker).
_VENV_AGENT = {
    "test_newcomer.py",
    "test_public_url.py",
    "agent_program/test_runner.py::test_a_step_finds_the_agents_own_command_even_off_path",
}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        where = Path(item.path).resolve().relative_to(TESTS_DIR).as_posix()
        folder = where.split("/", 1)[0]
        if folder in _BY_FOLDER:
            item.add_marker(_BY_FOLDER[folder])
        if "drill" in Path(where).stem:  # tests/e2e/test_drill_*.py, tests/ops/test_readiness_drill.py
            item.add_marker("drill")
        if "browser_page" in getattr(item, "fixturenames", ()):
            item.add_marker("browser")
        if where in _SLOW_MODULES:
            item.add_marker("slow")
        if where in _VENV_AGENT or f"{where}::{item.name}" in _VENV_AGENT:
            item.add_marker(pytest.mark.xdist_group("venv_agent"))


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _missing_service("PostgreSQL")
    if item.get_closest_marker("redis"):
        if not settings.REDIS_URL:
            _missing_service("Redis")
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
        except redis.RedisError:
            _missing_service("Redis")


_own_keys_client = None


def clear_own_redis_keys() -> int:
    """Delete this session's keys in its Redis database: the cache's, the outbox's pace and the broker's
    (all start with REDIS_KEY_PREFIX, tests/settings.py). Not `cache.clear()`: Django's Redis cache clears
    with FLUSHDB, which would empty another test session's keys sharing the database too."""
    global _own_keys_client
    if not settings.REDIS_URL:
        cache.clear()  # the local-memory cache: this process's own
        return 0
    if _own_keys_client is None:
        import redis

        _own_keys_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
    keys = list(_own_keys_client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:*", count=1000))
    return _own_keys_client.delete(*keys) if keys else 0


def pytest_sessionfinish(session):
    """Leave nothing of this session (or this xdist worker) in Redis: FLUSHDB used to, before each test."""
    if settings.REDIS_URL:
        import redis

        # Redis gone by now: the tests that needed it have said so.
        with contextlib.suppress(redis.RedisError):
            clear_own_redis_keys()


@pytest.fixture(autouse=True)
def _isolated_cache_and_eager_tasks(request):
    """Each test starts with none of its session's Redis keys (rate-limit counters, queued tasks)
    and, unless it is about the worker, Celery tasks run in-process so the test sees their effect."""
    clear_own_redis_keys()
    eager = not request.node.get_closest_marker("real_worker")
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    yield
    celery_app.conf.task_always_eager = old


class Api:
    """An APIClient that speaks for one caller."""

    def __init__(self):
        self.client = APIClient()

    def as_user(self, user) -> Api:
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
        return self

    def as_token(self, raw: str) -> Api:
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return self

    def anonymous(self) -> Api:
        self.client.credentials()
        return self

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture
def api() -> Api:
    return Api()


@pytest.fixture
def one_rate_limit_window(monkeypatch):
    """Pin the rate limiter's clock (orgs/ratelimit.py counts failures in slices of its window,
    keyed by the time): every attempt of the test counts at one instant, however slowly the test
    runs, so "N failures, then refused" never depends on the machine's speed. Returns the clock;
    a test moves it with `clock.now += seconds`."""
    from types import SimpleNamespace

    from orgs import ratelimit

    clock = SimpleNamespace(now=time.time())
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: clock.now))
    return clock


@pytest.fixture
def finished_signals():
    """Every `job_finished` sent during the test, as (job_id, org_id, status)."""
    from triggers.signals import job_finished

    seen = []

    def receiver(sender, job_id, org_id, status, **kwargs):
        seen.append((job_id, org_id, status))

    job_finished.connect(receiver, weak=False, dispatch_uid="tests.finished_signals")
    yield seen
    job_finished.disconnect(dispatch_uid="tests.finished_signals")


@pytest.fixture
def org_a(db):
    return OrganizationFactory(name="Acme", slug="acme")


@pytest.fixture
def org_b(db):
    return OrganizationFactory(name="Bravo", slug="bravo")


@pytest.fixture
def owner(org_a):
    return MembershipFactory(org=org_a, role=Role.OWNER, user__email="owner@acme.test").user


@pytest.fixture
def admin_user(org_a):
    return MembershipFactory(org=org_a, role=Role.ADMIN, user__email="admin@acme.test").user


@pytest.fixture
def member(org_a):
    return MembershipFactory(org=org_a, role=Role.MEMBER, user__email="member@acme.test").user


@pytest.fixture
def outsider(org_b):
    """Owner of another org: has every right there and none in org_a."""
    return MembershipFactory(org=org_b, role=Role.OWNER, user__email="outsider@bravo.test").user


@pytest.fixture
def org_token(org_a):
    return make_token(org_a)


@pytest.fixture
def outsider_token(org_b):
    return make_token(org_b)


def pytest_configure(config):
    # Hashing passwords properly costs ~200 ms a user; tests make hundreds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Every test client loads the middleware anew, and WhiteNoise (WHITENOISE_USE_FINDERS) then walks and
    # stats every static file: a fifth of the fast loop. With autorefresh it looks a file up when asked for
    # it and serves it the same way. (tests/test_project_checks.py serves assets as production does.)
    settings.WHITENOISE_AUTOREFRESH = True
    # A pool re-created during teardown (a server thread closing its connection late)
    # must not open a connection by itself, or the test database cannot be dropped.
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict):
        pool["min_size"] = 0
    # No agent is served under /agent/ unless a test asks for one (`served_agent`): what `make install`
    # built into var/ must not change what a test sees.
    settings.DEPLITE_AGENT_DIST_DIR = Path(tempfile.mkdtemp(prefix="deplite-no-agent-"))


def pytest_unconfigure(config):
    shutil.rmtree(settings.DEPLITE_AGENT_DIST_DIR, ignore_errors=True)


# --- the agent this server hands out --------------------------------------------------------------------


@pytest.fixture(scope="session")
def agent_release(tmp_path_factory):
    """The agent's wheel, sha256 and install.sh, built once per run from this checkout by the set-up
    command (`manage.py build_agent`, as `make install` and the Procfile's release line run it). Under
    pytest-xdist the first worker to need it builds it, under a file lock, for all (tests only read it)."""
    from django.core.management import call_command
    from filelock import FileLock

    from agents.distribution import MANIFEST, load_release

    run_dir = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_dir = run_dir.parent  # above each worker's own directory: this run's
    dest = run_dir / "agent-dist"
    with FileLock(str(run_dir / "agent-dist.lock")):
        if not (dest / MANIFEST).is_file():  # written last by build_agent
            call_command("build_agent", dest=str(dest), stdout=io.StringIO())
    return load_release(dest)


@pytest.fixture
def served_agent(settings, agent_release):
    """This server hands out `agent_release` (the in-process server: test client, live_server)."""
    settings.DEPLITE_AGENT_DIST_DIR = agent_release.directory
    return agent_release


# --- an S3-compatible server (moto over HTTP), for the storage and end-to-end tests ------------------


@pytest.fixture(scope="session")
def moto_url():
    proc, url = start_moto()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_admin(moto_url):
    """A plain boto3 client for looking inside the bucket (not the code under test)."""
    return admin_client(moto_url)


@pytest.fixture
def bucket(s3_admin) -> str:
    name = f"t-{uuid.uuid4().hex[:16]}"
    s3_admin.create_bucket(Bucket=name)
    return name


# --- loopback HTTP servers for the chat fakes (tests/chat_fakes.py) ---------------------------------------


@pytest.fixture(scope="session")
def chat_api_servers():
    """pytest-httpserver servers started once per run and cleared around each test, as the library's own
    `httpserver` fixture is: stopping a server waits out its loop's half-second poll, which every test that
    used a fake paid. By name, as a test may need two (Slack and Discord at their own URLs)."""
    from pytest_httpserver import HTTPServer

    servers: dict[str, HTTPServer] = {}

    def server(name: str) -> HTTPServer:
        if name not in servers:
            servers[name] = HTTPServer(host="127.0.0.1", port=0, threaded=True)
            servers[name].start()
        servers[name].clear()
        return servers[name]

    yield server
    for running in servers.values():
        running.stop()


CHROMIUM = "/usr/bin/chromium"


ACCESSIBILITY_CHECK = pytest.StashKey["AccessibilityCheck"]()


@pytest.fixture
def browser_page(live_server, request):
    """A headless Chromium page (Playwright driving Debian's chromium) and the live server.

    axe-core checks every page it loads; a serious or critical finding fails the test
    (`pytest_runtest_call` below)."""
    import shutil

    from .browser import AccessibilityCheck

    if not shutil.which(CHROMIUM):
        _missing_service("Chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test
    # itself makes are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page()
        page.set_default_timeout(15000)
        request.node.stash[ACCESSIBILITY_CHECK] = AccessibilityCheck(page)
        yield page, live_server.url
        browser.close()
        # ORM calls made while Playwright's loop ran used their own connection context;
        # close it here, in that context, so it goes back to the pool.
        from django.db import connections

        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def accessibility_check(browser_page, request):
    """The axe-core check of `browser_page`, for a test that looks at its findings itself."""
    return request.node.stash[ACCESSIBILITY_CHECK]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A browser test fails, as itself, when a page it visited has a serious or critical
    accessibility violation, whatever else it asserted."""
    result = yield
    check = item.stash.get(ACCESSIBILITY_CHECK, None)
    if check is not None:
        check.assert_no_serious_violations()
    return result


@pytest.fixture(scope="session")
def django_db_modify_db_settings(request):
    """pytest-django's per-worker test database names under pytest-xdist (`test_deplite_gw0`, …), but not for
    SQLite: its test database is in memory, one per process, or (tests/e2e/conftest.py) a file in a
    directory of this process's own, under the one name the server process it starts opens."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        request.getfixturevalue("django_db_modify_db_settings_parallel_suffix")


@pytest.fixture(scope="session", autouse=True)
def _close_db_pool_before_teardown(django_db_setup):
    """psycopg's pool keeps connections open (that is its point); close them before the
    test database is dropped, or PostgreSQL refuses to drop a database in use."""
    yield
    from django.db import connections

    for conn in connections.all():
        if conn.vendor == "postgresql" and conn.pool is not None:
            conn.close_pool()


# --- a dead broker (tests/test_background.py, chat commands) -----------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nobody listens once the socket closes


def _unanswered_port(keep: list) -> int:
    """A port whose connection attempts get no answer: a listener that never accepts, its queue filled."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    keep.append(server)
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        keep.append(filler)
    return port


def _reset_broker_pools() -> None:
    # What Celery does after a fork: the next publish looks its pools up for the current URL
    # (kombu keeps one per URL; the original broker's pool is found again afterwards).
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(params=["refused", "unanswered"])
def dead_broker(request, caplog):
    """Celery publishes to a Redis URL that refuses connections, or never answers them."""
    sockets: list[socket.socket] = []
    port = _closed_port() if request.param == "refused" else _unanswered_port(sockets)
    conf = celery_app.conf
    old = conf.broker_url, conf.broker_write_url, conf.task_always_eager
    conf.broker_url = conf.broker_write_url = f"redis://127.0.0.1:{port}/0"
    conf.task_always_eager = False
    _reset_broker_pools()
    caplog.set_level(logging.WARNING, logger="deplite.background")
    yield caplog
    conf.broker_url, conf.broker_write_url, conf.task_always_eager = old
    _reset_broker_pools()
    for sock in sockets:
        sock.close()
