"""Fault-drill plumbing: a PostgreSQL and a Redis of the drill's own (never the shared ones), a Deplite
server and worker on them, and a seeded org, trigger, token and agent.

PostgreSQL: `initdb` refuses root, so the cluster belongs to the `postgres` user (DESIGN §9); the drill
stops it (`-m fast` or `-m immediate`) and starts it again on the same port and data directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings

from tests.e2e.stack import BASE_DIR, ServerProcess, WorkerProcess
from tests.s3_server import free_port

PG_BIN = Path(os.environ.get("DEPLITE_DRILL_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(*command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=timeout, check=True)


class OwnPostgres:
    """A throw-away PostgreSQL cluster on a spare port."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="deplite-drill-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")
        self.start()
        _as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "drill")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/drill"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        log = str(self.root / "postgres.log")
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


class OwnRedis:
    """A throw-away `redis-server --save ''` on a spare port; `kill()` is the outage."""

    def __init__(self):
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


def drill_env(*, database_url: str, redis_url: str | None, **extra: str) -> dict[str, str]:
    # Not the test session's key prefixes (tests/settings.py): a drill's processes have a Redis of their own
    # and run with the product's defaults.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "DEPLITE_")) and k != "CELERY_BROKER_KEY_PREFIX"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="deplite.settings",
        DATABASE_URL=database_url,
        SECRET_KEY=settings.SECRET_KEY,
        DEPLITE_ENCRYPTION_KEYS=",".join(settings.DEPLITE_ENCRYPTION_KEYS),
        PYTHONUNBUFFERED="1",
        CELERY_TRACE_LOG_LEVEL="INFO",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


SEED = """
import json
import sys
import django
django.setup()
from rest_framework_simplejwt.tokens import RefreshToken
from orgs.models import Role, TokenScope
from tests.factories import AgentFactory, MembershipFactory, OrganizationFactory, TriggerFactory, make_token
name = sys.argv[1]
org = OrganizationFactory(name=name, slug=name)
owner = MembershipFactory(org=org, role=Role.OWNER, user__email=f"owner@{name}.test").user
trigger = TriggerFactory(org=org, name="drill", workflow="drill")
_, raw = make_token(org, scope_type=TokenScope.TRIGGER, trigger_ids=[str(trigger.pk)])
agent = AgentFactory(org=org, name="drill-agent")
print(json.dumps({
    "org": org.slug, "trigger": str(trigger.pk), "token": raw, "jwt": str(RefreshToken.for_user(owner).access_token),
    "agentId": str(agent.pk), "secret": agent.secret,
}))
"""


def run_django(env: dict[str, str], code: str, *args: str) -> str:
    """Run `code` (which calls django.setup()) in a process on the drill's database; returns its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def migrate_and_seed(env: dict[str, str], name: str) -> dict[str, str]:
    """Migrate the drill's database (a no-op the second time) and create org `name` with its owner, a trigger
    for workflow `drill` with a trigger token, and an agent."""
    manage(env, "migrate", "--noinput")
    return json.loads(run_django(env, SEED, name).strip().splitlines()[-1])


__all__ = [
    "OwnPostgres",
    "OwnRedis",
    "ServerProcess",
    "WorkerProcess",
    "drill_env",
    "manage",
    "migrate_and_seed",
    "run_django",
]
