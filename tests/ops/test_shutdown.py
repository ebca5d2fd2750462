"""Real server processes (as in production): SIGTERM ends a waiting long-poll claim at once with a 204 so
the agent reconnects elsewhere, and the process exits; a run request's JSON log line carries its ids;
gunicorn's workers add their metrics up (multiprocess mode)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import redis
import requests
from django.conf import settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from agents import signing
from tests.agent_program.harness import wait_until
from tests.e2e.stack import BASE_DIR, ServerProcess, _Process, stack_env
from tests.factories import AgentFactory, TriggerFactory
from tests.s3_server import free_port
from triggers import wakeups

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

METRICS_TOKEN = "ops-test-metrics-token"  # noqa: S105 (a test value)


class Uvicorn(ServerProcess):
    """`uvicorn deplite.asgi:application` without the e2e stack's `--timeout-graceful-shutdown 1`: the
    prompt stop proven here must come from the application, not from uvicorn cancelling requests."""

    def __init__(self, *, port, env, log_path):
        super().__init__(port=port, env=env, log_path=log_path)
        i = self.command.index("--timeout-graceful-shutdown")
        del self.command[i : i + 2]


class Gunicorn(ServerProcess):
    """The Procfile's web process: gunicorn with uvicorn workers and deplite/gunicorn_conf.py."""

    def __init__(self, *, port, env, log_path, workers: int = 2):
        super().__init__(port=port, env=env, log_path=log_path)
        self.workers = workers
        _Process.__init__(
            self,
            command=[
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:deplite.gunicorn_conf",
                "deplite.asgi:application",
                "-k",
                "deplite.web_worker.Worker",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
            ],
            env={**self.env, "PROMETHEUS_MULTIPROC_DIR": str(log_path.parent / "prom")},
            log_path=log_path,
        )

    def _spawn(self) -> None:
        # Its own process group, so a test that fails midway can end the master and its workers together.
        with open(self.log_path, "a") as out:
            self.proc = subprocess.Popen(
                self.command, cwd=BASE_DIR, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def start(self, timeout: float = 60) -> Gunicorn:
        self._spawn()
        # Ready when every worker has booted (a request before that waits in the socket's backlog).
        wait_until(
            lambda: self.output().count("Application startup complete") >= self.workers or not self.running(),
            timeout=timeout,
            message="gunicorn's workers to boot",
        )
        if not self.running():
            raise RuntimeError(f"gunicorn exited:\n{self.output()[-4000:]}")
        return self


def _env(port: int) -> dict[str, str]:
    return {
        **stack_env(public_url=f"http://127.0.0.1:{port}"),
        "LOG_FORMAT": "json",
        "DEPLITE_METRICS_TOKEN": METRICS_TOKEN,
    }


def _claim_in_background(url: str, agent) -> dict:
    path = "/api/agent/jobs/claim?wait=30"
    header = signing.signature_header(agent_id=str(agent.pk), secret=agent.secret, method="POST", path=path, body=b"")
    out: dict = {}

    def claim():
        try:
            response = requests.post(url + path, data=b"", headers={"X-Agent-Signature": header}, timeout=40)
            out["status"] = response.status_code
        except requests.RequestException as exc:
            out["error"] = repr(exc)
        out["at"] = time.monotonic()

    thread = threading.Thread(target=claim, daemon=True)
    thread.start()
    out["thread"] = thread
    return out


def _sigterm_during_a_long_poll(server: ServerProcess, agent) -> tuple[dict, float, float]:
    waiting = _claim_in_background(server.url, agent)
    client = redis.Redis.from_url(settings.REDIS_URL)
    channel = wakeups.CHANNEL
    # The web process holds one wake-up subscription for all its waiting claims (agents.waiters),
    # taken when the first claim waits; give the claim a moment more to be in its wait.
    wait_until(
        lambda: dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) >= 1,
        timeout=15,
        message="the claim to wait in its long poll",
    )
    time.sleep(1.5)
    sent = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    waiting["thread"].join(timeout=35)
    server.proc.wait(timeout=35)
    exited = time.monotonic()
    return waiting, waiting["at"] - sent, exited - sent


@pytest.fixture
def agent(org_a):
    return AgentFactory(org=org_a, labels=["prod"], last_seen_at=timezone.now())


def test_sigterm_ends_a_long_poll_with_204_and_uvicorn_exits(tmp_path, org_a, agent, org_token):
    port = free_port()
    server = Uvicorn(port=port, env=_env(port), log_path=tmp_path / "uvicorn.log").start()
    try:
        # A run request first (a job no agent of this test can take): its JSON log line carries the ids.
        trigger = TriggerFactory(org=org_a, agent_labels=["elsewhere"])
        run = requests.post(
            f"{server.url}/triggers/{trigger.id}/run",
            data='{"ref": "main"}',
            headers={"Authorization": f"Bearer {org_token[1]}", "X-Request-ID": "ci-run-7"},
            timeout=10,
        )
        assert run.status_code == 202, run.text
        assert run.headers["X-Request-ID"] == "ci-run-7"
        waiting, answered_after, exited_after = _sigterm_during_a_long_poll(server, agent)
    finally:
        server.kill()
    assert waiting.get("status") == 204, (waiting, server.output()[-3000:])
    # The claim asked to wait 30 s; the stop ends it at once.
    assert answered_after < 2.0, answered_after
    assert exited_after < 5.0, exited_after
    # A graceful stop: uvicorn finishes, then re-raises the SIGTERM it caught (its documented behaviour).
    assert server.proc.returncode in (0, -signal.SIGTERM)
    assert "Finished server process" in server.output()
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    run_lines = [x for x in lines if x.get("request_id") == "ci-run-7"]
    assert len(run_lines) == 1, server.output()[-3000:]
    assert run_lines[0]["job_id"] == run.json()["jobId"]
    assert run_lines[0]["message"].startswith(f"POST /triggers/{trigger.id}/run 202")
    assert run_lines[0]["logger"] == "deplite.request" and run_lines[0]["org"] == "acme"


def test_gunicorn_workers_add_their_metrics_up_and_end_long_polls_on_sigterm(tmp_path, org_a, agent, org_token):
    port = free_port()
    server = Gunicorn(port=port, env=_env(port), log_path=tmp_path / "gunicorn.log", workers=2).start()
    try:
        trigger = TriggerFactory(org=org_a, agent_labels=["elsewhere"])
        runs = 6
        for _ in range(runs):
            # A new connection each time, so the requests spread over the workers.
            response = requests.post(
                f"{server.url}/triggers/{trigger.id}/run",
                data="{}",
                headers={"Authorization": f"Bearer {org_token[1]}", "Connection": "close"},
                timeout=10,
            )
            assert response.status_code == 202
        created = None
        for _ in range(4):
            scrape = requests.get(
                f"{server.url}/metrics",
                headers={"Authorization": f"Bearer {METRICS_TOKEN}", "Connection": "close"},
                timeout=10,
            )
            assert scrape.status_code == 200
            for family in text_string_to_metric_families(scrape.text):
                for sample in family.samples:
                    if sample.name == "deplite_jobs_created_total" and sample.labels == {"source": "webhook"}:
                        created = sample.value
            # Whichever worker answers, it reports all of them.
            assert created == runs
        waiting, answered_after, exited_after = _sigterm_during_a_long_poll(server, agent)
    finally:
        server.kill()
    assert waiting.get("status") == 204, (waiting, server.output()[-3000:])
    assert answered_after < 2.0, answered_after
    assert exited_after < 10.0, exited_after
