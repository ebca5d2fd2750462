"""Claims under contention (PostgreSQL) and the long-poll wake-up (Redis)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest
import redis
from django.conf import settings
from django.db import connection, connections
from django.test import Client

from agents import waiters
from agents.protocol import claim as protocol_claim
from orgs.models import TokenScope
from triggers.models import Job, JobStatus
from triggers.services import job_claim_next

from ..agent_program.harness import wait_until
from ..e2e.stack import WorkerProcess, stack_env
from ..factories import AgentFactory, JobFactory, TriggerFactory, make_token
from .signed import SignedAgent


def _claim_until_empty_concurrently(agents) -> list[tuple]:
    """Every agent claims in its own thread (own DB connection) until nothing is left."""
    barrier = threading.Barrier(len(agents))
    claims: list[tuple] = []
    lock = threading.Lock()

    def worker(agent):
        try:
            barrier.wait()
            while True:
                job = job_claim_next(
                    org_id=agent.org_id, agent_id=agent.pk, agent_name=agent.name, agent_labels=agent.labels
                )
                if job is None:
                    return
                with lock:
                    claims.append((job.pk, agent.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return claims


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_give_one_job_to_two_agents(org_a):
    agents = [AgentFactory(org=org_a, labels=["prod"]) for _ in range(8)]
    trigger = TriggerFactory(org=org_a, agent_labels=["prod"])
    rounds, jobs_per_round = 15, 24
    for _ in range(rounds):
        jobs = {JobFactory(org=org_a, trigger=trigger).pk for _ in range(jobs_per_round)}
        claims = _claim_until_empty_concurrently(agents)

        claimed_ids = [job_id for job_id, _ in claims]
        duplicates = [j for j, n in Counter(claimed_ids).items() if n > 1]
        assert duplicates == []
        assert set(claimed_ids) == jobs
        owners = dict(Job.objects.filter(pk__in=jobs).values_list("pk", "agent_id"))
        assert all(owners[job_id] == agent_id for job_id, agent_id in claims)
    assert Job.objects.filter(status=JobStatus.QUEUED).count() == 0


def _claim_in_thread(agent, wait: int, out: dict):
    def run():
        try:
            started = time.monotonic()
            response = SignedAgent(agent, client=Client()).claim(wait=wait)
            out["status"] = response.status_code
            out["body"] = response.json() if response.status_code == 200 else None
            out["returned_at"] = time.monotonic()
            out["started_at"] = started
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _start_waiting_claim(agent, wait: int, out: dict) -> threading.Thread:
    """A claim in its own thread, returned once it waits for a wake-up: registered with the process's
    subscription, its first look done and empty. (A fixed sleep raced a slow start: a job committed before
    that first look is simply found by it, and no wake-up is involved.)"""
    hub = waiters.hub()
    wait_until(lambda: hub.connected, timeout=10, message="the claim wake-up subscription")
    looks: list = []
    real = protocol_claim._claim_once

    def counting(a):
        payload = real(a)
        looks.append(payload)
        return payload

    with mock.patch.object(protocol_claim, "_claim_once", counting):
        thread = _claim_in_thread(agent, wait, out)
        wait_until(lambda: looks and hub.waiting(agent.org_id) == 1, timeout=10, message="the claim to wait")
    assert looks == [None]
    return thread


def _run_trigger_and_time_the_claim(org, agent, trigger) -> float:
    _, raw = make_token(org, scope_type=TokenScope.TRIGGER, trigger_ids=[str(trigger.pk)])
    out: dict = {}
    thread = _start_waiting_claim(agent, 20, out)  # the agent has made its first claim attempt and is now waiting
    assert "status" not in out
    client = Client()
    response = client.post(
        f"/triggers/{trigger.pk}/run",
        '{"ref": "main"}',
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    committed_at = time.monotonic()
    assert response.status_code == 202
    thread.join(25)
    assert out["status"] == 200, out
    assert out["body"]["id"] == response.json()["jobId"]
    return out["returned_at"] - committed_at


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_waiting_agent_gets_a_new_job_through_the_publish_path(org_a):
    """Eager tasks: the run endpoint's after-commit dispatch publishes on Redis in-process. How fast: `make bench`
    (claim, wakeup)."""
    # A waiting claim never looks again on its own (agents.waiters): its answer with the job is the wake-up's.
    agent = AgentFactory(org=org_a, labels=["prod"])
    trigger = TriggerFactory(org=org_a, agent_labels=["prod"])
    _run_trigger_and_time_the_claim(org_a, agent, trigger)


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real `celery worker` process on the test database and this test's Redis broker
    (the end-to-end tests' launcher, tests/e2e/stack.py)."""
    env = {**stack_env(public_url="http://127.0.0.1"), "DATABASE_POOL": "false"}
    worker = WorkerProcess(env=env, log_path=tmp_path / "worker.log")
    try:
        worker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield worker
    worker.stop()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.real_worker
def test_waiting_agent_gets_a_new_job_through_a_real_worker(celery_worker_process, org_a):
    """The dispatch task (input files verified, a job taken back): through the broker to a worker that publishes.
    How fast: `make bench` (wakeup)."""
    from triggers.services import job_enqueue_dispatch

    # Nothing else may hold the broker's queue: make sure the task really went to Redis.
    assert not __import__("deplite.celery").celery.app.conf.task_always_eager
    redis.Redis.from_url(settings.REDIS_URL).ping()
    agent = AgentFactory(org=org_a, labels=["prod"])
    trigger = TriggerFactory(org=org_a, agent_labels=["prod"])
    out: dict = {}
    thread = _start_waiting_claim(agent, 20, out)  # the agent has made its first claim attempt and is now waiting
    assert "status" not in out
    job = JobFactory(org=org_a, trigger=trigger)
    job_enqueue_dispatch(job_id=job.pk)  # no org at hand: the worker's job_dispatch publishes
    thread.join(25)
    assert out["status"] == 200, out
    assert out["body"]["id"] == str(job.pk)


def _listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_waiting_claims_do_not_hold_database_connections(org_a, tmp_path):
    """Hundreds of idle agents must fit one web process: under a real ASGI server a
    waiting long poll gives its database connection back between attempts instead of
    pinning one (and its pool slot) for up to 30 s. With a pool of 3 connections, 12
    agents waiting 6 s each must all get their answer; were each wait to pin a slot,
    the third batch would time out on the pool (10 s) and fail."""
    import urllib.error
    import urllib.request

    agent = AgentFactory(org=org_a)
    signer = SignedAgent(agent)
    db = connection.settings_dict
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "DEPLITE_ENCRYPTION_KEYS": ",".join(settings.DEPLITE_ENCRYPTION_KEYS),
        "SECRET_KEY": settings.SECRET_KEY,
        "DEPLITE_VAR_DIR": str(tmp_path),
        "DATABASE_POOL_MIN": "0",
        "DATABASE_POOL_MAX": "3",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "deplite.asgi:application", "--port", str(port), "--log-level", "warning"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
    )
    waiters = 12

    def claim(results):
        path = "/api/agent/jobs/claim?wait=6"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=b"{}",
            method="POST",
            headers={"X-Agent-Signature": signer.header("POST", path, b"{}"), "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback test server)
                results.append(response.status)
        except urllib.error.HTTPError as exc:
            results.append(exc.code)

    try:
        wait_until(lambda: _listens(port), timeout=10, interval=0.1, message="the server to listen")
        results: list[int] = []
        threads = [threading.Thread(target=claim, args=(results,)) for _ in range(waiters)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=40)
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert sorted(results) == [204] * waiters
