"""Fault drills on the production shape (ASGI server, Celery worker, PostgreSQL, Redis, a real agent), each
bounded in count and time. What must hold: PostgreSQL restarted → no 500 afterwards (pooled connections are
checked on checkout) and a 503 with Retry-After while it is down; Redis killed during 100 runs → every answer
a 202 and every job runs exactly once; a worker SIGKILLed mid-task → its work is done exactly once."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from agents import signing
from tests.agent.harness import AgentHome, wait_until
from tests.s3_server import free_port

from .services import ServerProcess, WorkerProcess, drill_env, migrate_and_seed

pytestmark = pytest.mark.drill

RUNS = 100


class Drill:
    def __init__(self, *, pg, redis, tmp, **env_extra):
        self.pg = pg
        self.redis = redis
        self.env = drill_env(database_url=pg.url, redis_url=redis.url, **env_extra)
        self.seed = migrate_and_seed(self.env, f"drill-{uuid.uuid4().hex[:8]}")
        port = free_port()
        self.env["DEPLITE_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        self.server = ServerProcess(port=port, env=self.env, log_path=tmp / "server.log")
        self.worker = WorkerProcess(env=self.env, log_path=tmp / "worker.log")
        self.session = requests.Session()

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.seed['jwt']}"}
        return requests.request(method, f"{self.url}/api/orgs/{self.seed['org']}{path}", headers=headers, timeout=30, **kw)

    def run(self) -> requests.Response:
        return requests.post(
            f"{self.url}/triggers/{self.seed['trigger']}/run",
            headers={"Authorization": f"Bearer {self.seed['token']}"},
            data=b'{"ref": "main"}',
            timeout=30,
        )

    def heartbeat(self) -> requests.Response:
        body = b'{"hostname": "drill", "workflows": ["drill"]}'
        header = signing.signature_header(
            agent_id=self.seed["agentId"], secret=self.seed["secret"], method="POST", path="/api/agent/heartbeat", body=body
        )
        return requests.post(
            f"{self.url}/api/agent/heartbeat",
            data=body,
            headers={"X-Agent-Signature": header, "Content-Type": "application/json"},
            timeout=30,
        )

    def stop(self) -> None:
        self.server.stop()
        self.worker.stop()


@pytest.fixture
def drill(own_postgres, own_redis, tmp_path):
    world = Drill(
        pg=own_postgres,
        redis=own_redis,
        tmp=tmp_path,
        # A small pool, so a request that holds its connection while waiting on something else shows at once.
        DATABASE_POOL_MIN="2",
        DATABASE_POOL_MAX="4",
        DATABASE_POOL_TIMEOUT="2",
    )
    try:
        yield world
    finally:
        world.stop()


def assert_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert response.headers["Retry-After"].isdigit()
    assert response.json()["error"]["code"] == "service_unavailable"


def test_postgresql_restart_answers_503_while_down_and_no_error_afterwards(drill):
    drill.server.start()
    # Several connections in the pool, all of which the restart will kill.
    with ThreadPoolExecutor(8) as pool:
        warm = list(pool.map(lambda _: drill.api("GET", "/jobs").status_code, range(16)))
    assert warm == [200] * 16

    drill.pg.stop("fast")
    try:
        assert_unavailable(drill.api("GET", "/jobs"))
        assert_unavailable(drill.heartbeat())
        assert_unavailable(drill.run())
    finally:
        drill.pg.start()

    statuses = []
    for _ in range(10):
        statuses += [drill.api("GET", "/jobs").status_code, drill.heartbeat().status_code]
    with ThreadPoolExecutor(8) as pool:
        statuses += list(pool.map(lambda _: drill.api("GET", "/triggers").status_code, range(16)))
    assert statuses == [200] * len(statuses), statuses
    assert " 500 " not in drill.server.output()


def test_redis_killed_during_100_runs_every_answer_is_a_202_and_every_job_runs_once(drill, tmp_path):
    drill.worker.start()
    drill.server.start()
    home = AgentHome(tmp_path / "agent")
    runs_file = tmp_path / "runs.txt"
    home.write_workflow("drill", f'steps:\n  - name: once\n    run: echo "$DEPLITE_JOB_ID" >> {runs_file}\n')
    agent = home.start_agent(
        "--concurrency", "4", "--poll-wait", "5", url=drill.url, agent_id=drill.seed["agentId"], secret=drill.seed["secret"]
    )
    answers: list[tuple[int, float, str]] = []
    lock = threading.Lock()

    def one(_):
        started = time.monotonic()
        response = drill.run()
        with lock:
            answers.append((response.status_code, time.monotonic() - started, response.text[:300]))
        return response

    try:
        with ThreadPoolExecutor(10) as pool:
            first = list(pool.map(one, range(30)))
            drill.redis.kill()  # mid-stream: the broker, the cache and the agents' wake-ups are gone
            rest = list(pool.map(one, range(RUNS - 30)))
        job_ids = [r.json()["jobId"] for r in first + rest if r.status_code == 202]
        assert [a[0] for a in answers] == [202] * RUNS, [a for a in answers if a[0] != 202][:5]
        print(f"run answers with Redis up/down: max {max(a[1] for a in answers[:30]) * 1000:.0f} ms / "
              f"{max(a[1] for a in answers[30:]) * 1000:.0f} ms")
        drill.redis.start()  # the outage ends: agents sign again (nonce store), the worker reconnects

        def all_ran():
            lines = runs_file.read_text().split() if runs_file.exists() else []
            return len(lines) >= RUNS and lines

        lines = wait_until(all_ran, timeout=45, interval=0.2, message=f"{RUNS} jobs to run")
        assert sorted(lines) == sorted(job_ids)  # each accepted job ran, and exactly once
        time.sleep(0.5)
        assert len(runs_file.read_text().split()) == RUNS
    finally:
        agent.__exit__(None, None, None)
    assert " 500 " not in drill.server.output()
