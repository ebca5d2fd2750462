"""End-to-end fixtures: the real server (and, with Redis, a real Celery worker) in their own processes on
pytest-django's test database, and the real agent as a subprocess with real bash workflows.

Rows a test creates must be committed for those processes to see them: every test here uses
`transactional_db`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken

from tests.agent_program.harness import AgentHome, AgentProcess, wait_until
from tests.s3_server import free_port

from .stack import SQLITE_NAME, ServerProcess, WorkerProcess, stack_env

FINAL = ("succeeded", "failed", "cancelled")

_sqlite_dir: str | None = None


def pytest_configure(config):
    """SQLite (the embedded default): pytest-django's test database is in memory unless it has a name, and
    the server process must open the same database, so give it a file."""
    global _sqlite_dir
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3" and not (db.get("TEST") or {}).get("NAME"):
        _sqlite_dir = tempfile.mkdtemp(prefix="deplite-e2e-")
        db.setdefault("TEST", {})["NAME"] = str(Path(_sqlite_dir) / SQLITE_NAME)


def pytest_unconfigure(config):
    if _sqlite_dir:
        shutil.rmtree(_sqlite_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_cache_and_eager_tasks():
    """Overrides the suite-wide fixture of that name: here the server and the worker run tasks, not this
    process. Clearing this process's cache would FLUSHDB the Redis database the worker's queue lives in,
    and with it the broker's queue bindings, silently dropping the server's next tasks."""
    yield


@pytest.fixture(scope="package")
def deplite_stack(django_db_setup, tmp_path_factory, agent_release):
    """The server (and a worker when REDIS_URL is set), started once for the end-to-end tests and
    stopped before the test database is dropped. It hands out the agent built from this checkout."""
    logs = tmp_path_factory.mktemp("stack")
    port = free_port()
    env = stack_env(public_url=f"http://127.0.0.1:{port}")
    env["DEPLITE_AGENT_DIST_DIR"] = str(agent_release.directory)
    worker = WorkerProcess(env=env, log_path=logs / "worker.log").start() if settings.REDIS_URL else None
    server = ServerProcess(port=port, env=env, log_path=logs / "server.log")
    try:
        server.start()
        yield Stack(server=server, worker=worker)
    finally:
        server.stop()
        if worker is not None:
            worker.stop()


class Stack:
    def __init__(self, *, server: ServerProcess, worker: WorkerProcess | None):
        self.server = server
        self.worker = worker

    @property
    def url(self) -> str:
        return self.server.url


class E2E:
    """One test's view of Deplite: an org owner's API calls, shaped like the docs' curl commands, and an
    agent home with workflow files."""

    def __init__(self, *, stack: Stack, org, owner, home: AgentHome):
        self.stack = stack
        self.org = org
        self.home = home
        self.jwt = str(RefreshToken.for_user(owner).access_token)
        self.agents: list[AgentProcess] = []
        self.agent: dict[str, str] = {}

    @property
    def url(self) -> str:
        return self.stack.url

    # -- HTTP, as the docs' curl sends it ---------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, *, bearer: str | None = None, **kw):
        headers = {"Authorization": f"Bearer {bearer or self.jwt}"}
        data = None
        if body is not None:
            # `curl -d '{…}'`: JSON with curl's default form Content-Type, not application/json.
            data = json.dumps(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return requests.request(method, self.url + path, data=data, headers=headers, timeout=30, **kw)

    def api(self, method: str, path: str, body: Any = None, *, expect: int = 200, **kw) -> Any:
        response = self.request(method, f"/api/orgs/{self.org.slug}{path}", body, **kw)
        assert response.status_code == expect, (method, path, response.status_code, response.text[:2000])
        return response.json() if response.content else None

    # -- setup through the API ----------------------------------------------------------------------------
    def create_agent(self, name: str = "web-1", labels: list[str] | None = None) -> dict[str, str]:
        created = self.api("POST", "/agents", {"name": name, "labels": labels or []}, expect=201)
        assert set(created) >= {"id", "secret"}
        self.agent = {"url": self.url, "agent_id": created["id"], "secret": created["secret"]}
        return self.agent

    def create_trigger(self, workflow: str, *, name: str | None = None, labels: list[str] | None = None) -> dict:
        trigger = self.api(
            "POST",
            "/triggers",
            {"name": name or f"run {workflow}", "type": "webhook", "workflow": workflow, "agentLabels": labels or []},
            expect=201,
        )
        token = self.api(
            "POST",
            "/tokens",
            {"name": f"ci {workflow}", "scopeType": "trigger", "triggerIds": [trigger["id"]]},
            expect=201,
        )
        assert token["token"].startswith("tk_")
        trigger["token"] = token["token"]
        return trigger

    def run(self, trigger: dict, *, ref: str | None = "main", params: dict | None = None) -> dict:
        """`curl -X POST …/triggers/<id>/run -H "Authorization: Bearer tk_..." -d '{"ref": …, "params": …}'`"""
        body: dict[str, Any] = {}
        if ref is not None:
            body["ref"] = ref
        if params is not None:
            body["params"] = params
        response = self.request("POST", f"/triggers/{trigger['id']}/run", body, bearer=trigger["token"])
        assert response.status_code == 202, response.text
        return response.json()

    # -- jobs ----------------------------------------------------------------------------------------------
    def job(self, job_id: str) -> dict:
        return self.api("GET", f"/jobs/{job_id}")

    def wait_job(self, job_id: str, statuses=FINAL, timeout: float = 30) -> dict:
        seen: dict = {}

        def reached():
            seen.update(self.job(job_id))
            return seen["status"] in statuses

        try:
            wait_until(reached, timeout=timeout, interval=0.1, message=f"job {job_id} to be {'/'.join(statuses)}")
        except AssertionError:
            raise AssertionError(
                f"job {job_id} is {seen.get('status')}: {seen}\n--- agent output ---\n{self.agent_output()}"
            ) from None
        return seen

    def logs(self, job_id: str) -> list[dict]:
        """Every log chunk of the job, following the `nextAfter` pages."""
        chunks: list[dict] = []
        after = 0
        while True:
            page = self.api("GET", f"/jobs/{job_id}/logs?after={after}")
            chunks += page["chunks"]
            if not page["chunks"]:
                return chunks
            after = page["nextAfter"]

    def log_text(self, job_id: str) -> str:
        return "".join(c["data"] for c in self.logs(job_id))

    # -- the agent ----------------------------------------------------------------------------------------
    def start_agent(self, *args: str) -> AgentProcess:
        if not self.agent:
            self.create_agent()
        agent = self.home.start_agent(*args, **self.agent)
        self.agents.append(agent)
        return agent

    def agent_output(self) -> str:
        return "\n".join(a.output() for a in self.agents)


@pytest.fixture
def e2e(transactional_db, deplite_stack, org_a, owner, tmp_path):
    world = E2E(stack=deplite_stack, org=org_a, owner=owner, home=AgentHome(tmp_path / "agent-home"))
    yield world
    for agent in world.agents:
        # The test has asserted what it needed; nothing is left to report.
        agent.__exit__(None, None, None)
