"""The real Deplite stack for end-to-end tests, each part in its own process on pytest-django's test
database: the ASGI server (uvicorn, as in production) and, when REDIS_URL is set, a Celery worker.

The server is a separate process so a test can stop it (an outage) and start it again on the same port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)
SQLITE_NAME = "deplite.sqlite3"  # the embedded default's file name under DEPLITE_VAR_DIR (deplite/settings/database.py)


def test_database_env() -> dict[str, str]:
    """Environment variables that point a Deplite process at the test database this pytest run created."""
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        user = s.get("USER") or ""
        password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
        auth = f"{user}{password}@" if user else ""
        return {"DATABASE_URL": f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"}
    if connection.vendor == "sqlite":
        # The embedded default reads its SQLite file from DEPLITE_VAR_DIR; tests/e2e/conftest.py gave the test
        # database that file name (an in-memory database cannot be shared with another process).
        path = Path(str(s["NAME"]))
        if path.name != SQLITE_NAME or not path.is_file():
            raise RuntimeError(f"the end-to-end tests need the SQLite test database in a file named {SQLITE_NAME}")
        return {"DEPLITE_VAR_DIR": str(path.parent)}
    raise RuntimeError(f"no end-to-end support for the {connection.vendor} database")


def stack_env(*, public_url: str) -> dict[str, str]:
    """What a server or worker process gets: the test database, this run's Redis (or none: the embedded
    default), and the test process's keys so JWTs minted here are valid there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "DEPLITE_"))}
    env.update(test_database_env())
    env.update(
        DJANGO_SETTINGS_MODULE="deplite.settings",
        SECRET_KEY=settings.SECRET_KEY,
        DEPLITE_ENCRYPTION_KEYS=",".join(settings.DEPLITE_ENCRYPTION_KEYS),
        # The test S3 server listens on 127.0.0.1.
        DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS="true",
        DEPLITE_PUBLIC_URL=public_url,
        # The web tier's liveness pulse (agents.pulse) every second, so outage drills stay short.
        DEPLITE_SERVER_PULSE_SECONDS="1",
        PYTHONUNBUFFERED="1",
    )
    if settings.REDIS_URL:
        # And this session's key prefixes (tests/settings.py): the worker must read the queue the tests write.
        env.update(
            REDIS_URL=settings.REDIS_URL,
            REDIS_KEY_PREFIX=settings.REDIS_KEY_PREFIX,
            CELERY_BROKER_KEY_PREFIX=settings.CELERY_BROKER_KEY_PREFIX,
        )
    return env


class _Process:
    """A background process whose output goes to a file (so it never blocks on a full pipe)."""

    def __init__(self, *, command: list[str], env: dict[str, str], log_path: Path):
        self.command = command
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def _spawn(self) -> None:
        with open(self.log_path, "a") as out:
            self.proc = subprocess.Popen(self.command, cwd=BASE_DIR, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything (a crash, a pulled plug)."""
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self, timeout: float = 10) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


class ServerProcess(_Process):
    """`uvicorn deplite.asgi:application` on a fixed port, restartable on that port."""

    def __init__(self, *, port: int, env: dict[str, str], log_path: Path):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "deplite.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            # Waiting claims (long polls) would otherwise hold a graceful stop for up to 30 s.
            "--timeout-graceful-shutdown",
            "1",
        ]
        super().__init__(command=command, env={**env, "DEPLITE_PUBLIC_URL": self.url}, log_path=log_path)

    def start(self, timeout: float = 30) -> ServerProcess:
        self._spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"the Deplite server exited:\n{self.output()[-4000:]}")
            try:
                # Any HTTP answer (a 401 here) means Django is loaded and serving.
                requests.get(f"{self.url}/api/orgs", timeout=2)
                return self
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still loading
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the Deplite server did not answer within {timeout}s:\n{self.output()[-4000:]}")


class WorkerProcess(_Process):
    """`celery -A deplite worker` on the test database and this run's Redis broker."""

    def __init__(self, *, env: dict[str, str], log_path: Path):
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "deplite",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ]
        # The tests read "Task … succeeded" lines, which the settings keep quiet by default.
        super().__init__(command=command, env={**env, "CELERY_TRACE_LOG_LEVEL": "INFO"}, log_path=log_path)

    def start(self, timeout: float = 30) -> WorkerProcess:
        self._spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.output():
                return self
            if not self.running():
                break
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the Celery worker did not start:\n{self.output()[-4000:]}")
