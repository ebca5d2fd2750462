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
from tests.agent_program.harness import AgentHome, wait_until
from tests.s3_server import free_port

from .services import ServerProcess, WorkerProcess, drill_env, migrate_and_seed

# The drills start a PostgreSQL and a Redis of their own (tests/drills/services.py), so they need both
# installed: on the README's SQLite `make test` (no DATABASE_URL / REDIS_URL) they skip like every test
# that needs those servers, and in CI they run (and fail rather than skip).
pytestmark = [pytest.mark.drill, pytest.mark.postgres, pytest.mark.redis]

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
        return requests.request(
            method, f"{self.url}/api/orgs/{self.seed['org']}{path}", headers=headers, timeout=30, **kw
        )

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
            agent_id=self.seed["agentId"],
            secret=self.seed["secret"],
            method="POST",
            path="/api/agent/heartbeat",
            body=body,
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
        "--concurrency",
        "4",
        "--poll-wait",
        "5",
        url=drill.url,
        agent_id=drill.seed["agentId"],
        secret=drill.seed["secret"],
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
        print(
            f"run answers with Redis up/down: max {max(a[1] for a in answers[:30]) * 1000:.0f} ms / "
            f"{max(a[1] for a in answers[30:]) * 1000:.0f} ms"
        )
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


def test_with_redis_down_agents_still_claim_report_and_finish_without_a_503(drill, tmp_path):
    """The agent protocol needs no Redis: nonces are in PostgreSQL and a claim without wake-ups polls."""
    drill.worker.start()
    drill.server.start()
    home = AgentHome(tmp_path / "agent")
    home.write_workflow("drill", 'steps:\n  - name: talk\n    run: for i in 1 2 3; do echo "tick $i"; done\n')
    agent = home.start_agent(
        "--concurrency",
        "2",
        "--poll-wait",
        "5",
        url=drill.url,
        agent_id=drill.seed["agentId"],
        secret=drill.seed["secret"],
    )
    try:
        assert drill.run().status_code == 202  # with Redis up, for reference
        drill.redis.kill()  # the broker, the cache and the agents' wake-ups are gone, and stay gone
        try:
            responses = [drill.run() for _ in range(10)]
            assert [r.status_code for r in responses] == [202] * 10
            job_ids = [r.json()["jobId"] for r in responses]

            def all_finished():
                statuses = [drill.api("GET", f"/jobs/{job_id}").json()["status"] for job_id in job_ids]
                return all(s in ("succeeded", "failed", "cancelled") for s in statuses) and statuses

            statuses = wait_until(all_finished, timeout=45, interval=0.5, message="10 jobs to finish without Redis")
            assert statuses == ["succeeded"] * 10
            assert "tick 3" in drill.api("GET", f"/jobs/{job_ids[-1]}/logs?after=0").text
        finally:
            drill.redis.start()
    finally:
        agent.__exit__(None, None, None)
    refused = [line for line in drill.server.output().splitlines() if "/api/agent/" in line and " 503 " in line]
    assert refused == [], refused[:5]
    assert " 500 " not in drill.server.output()


# --- worker SIGKILL mid-task ----------------------------------------------------------------------------

WORKER_WITH_SHORT_LEASE = """
import os
from datetime import timedelta
import django
django.setup()
import storage.services.verification as verification
# The verification lease is 3 minutes (a task killed mid-way blocks a retry that long); the drill must stay
# under a minute, so its worker uses a short one. Everything else is the production code path.
assert verification.VERIFY_LEASE > timedelta(seconds=3)
verification.VERIFY_LEASE = timedelta(seconds=3)
from deplite.celery import app
app.worker_main(["worker", "--pool=solo", "--loglevel=INFO", "--without-heartbeat", "--without-gossip",
                 "--without-mingle"])
"""

PENDING_FILE = """
import sys
import django
django.setup()
from orgs.models import Organization
from storage.models import StorageBinding, StoredFile
org = Organization.objects.get(slug=sys.argv[1])
binding = StorageBinding.objects.create(
    org=org, name="drill", endpoint=sys.argv[2], region="us-east-1", bucket="drill", access_key="AKIADRILL",
    secret_key="drill-secret", path_style=True,
)
f = StoredFile.objects.create(
    org=org, binding=binding, file_name="app.tar.gz", content_type="application/gzip", object_key="drill/app.tar.gz"
)
print(f.pk)
"""


class StallingS3(threading.Thread):
    """A stand-in bucket answering HeadObject: the first HEAD hangs (the worker is killed while it waits),
    later ones answer. Counts every HEAD."""

    def __init__(self):
        super().__init__(daemon=True)
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        state = self
        self.heads = 0
        self.first_arrived = threading.Event()
        self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                state.heads += 1
                if state.heads == 1:
                    state.first_arrived.set()
                    state.release.wait(30)
                    return  # hang up without an answer
                self.send_response(200)
                self.send_header("Content-Length", "1234")
                self.send_header("ETag", '"drill-etag"')
                self.send_header("Content-Type", "application/gzip")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def run(self):
        self.httpd.serve_forever(poll_interval=0.05)

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_worker_sigkilled_mid_task_leaves_the_work_done_exactly_once(own_postgres, own_redis, tmp_path):
    from .services import run_django

    s3 = StallingS3()
    s3.start()
    drill = Drill(
        pg=own_postgres,
        redis=own_redis,
        tmp=tmp_path,
        DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS="true",
        # An unacknowledged task of a dead worker is back in the queue after 3 s instead of an hour.
        CELERY_VISIBILITY_TIMEOUT="3",
    )
    first = WorkerProcess(env=drill.env, log_path=tmp_path / "worker-1.log")
    first.command = [first.command[0], "-c", WORKER_WITH_SHORT_LEASE]
    second = WorkerProcess(env=drill.env, log_path=tmp_path / "worker-2.log")
    second.command = list(first.command)
    try:
        file_id = run_django(drill.env, PENDING_FILE, drill.seed["org"], s3.url).strip()
        drill.server.start()
        first.start()
        assert drill.api("POST", f"/files/{file_id}/complete").status_code == 202
        assert s3.first_arrived.wait(20), first.output()[-3000:]
        first.kill()  # SIGKILL while the verification waits on the bucket: the task is neither acked nor done

        # A worker starting past the visibility timeout puts the dead worker's unacknowledged task back.
        time.sleep(3.5)
        second.start()
        wait_until(
            lambda: drill.api("GET", f"/files/{file_id}").json()["status"] == "available",
            timeout=40,
            interval=0.3,
            message="the verification to be redelivered and done",
        )
        stored = drill.api("GET", f"/files/{file_id}").json()
        assert stored["size"] == 1234
        time.sleep(4)  # past another visibility timeout: nothing runs it again
        assert s3.heads == 2  # the killed attempt and the one that finished it: done once
        assert second.output().count("succeeded") >= 1
    finally:
        s3.close()
        for worker in (first, second):
            worker.kill()
        drill.stop()
