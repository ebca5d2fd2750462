"""Webhook deliveries with a real Celery worker process against a local receiver: Retry-After
delays the retry, and a worker SIGKILLed mid-call leaves a delivery that is sent again under the
same X-Deplite-Delivery id (an endpoint cannot be asked whether it got it: receivers dedupe).

Rows must be committed for the worker to see them: every test uses `transactional_db`.
"""

from __future__ import annotations

import threading

import pytest

from deplite.celery import app as celery_app
from integrations.models import OutboxMessage
from integrations.tasks import outbox_sweep
from orgs.actors import Actor
from tests.agent_program.harness import wait_until
from tests.e2e.stack import WorkerProcess, stack_env
from tests.factories import MembershipFactory, OrganizationFactory
from tests.integrations.webhook_receiver import Receiver, Reply, readme_verifier
from triggers import services as trigger_services

from .conftest import finish, run

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.real_worker]
LEASE_SECONDS = 3


@pytest.fixture(autouse=True)
def _isolated_cache_and_eager_tasks():
    """Overrides the suite-wide fixture: tasks go to the worker (see tests/notifications/test_worker.py)."""
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = old


@pytest.fixture
def receiver(transactional_db, settings):
    settings.DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS = True
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def worker_env(receiver):
    env = stack_env(public_url="http://127.0.0.1:8000")
    env.update(DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS="true", DEPLITE_NOTIFY_LEASE_SECONDS=str(LEASE_SECONDS))
    return env


@pytest.fixture
def org(transactional_db):
    org = OrganizationFactory(name="Acme", slug="acme")
    MembershipFactory(org=org)
    return org


def _trigger(org, url: str):
    return trigger_services.trigger_create(
        org=org,
        actor=Actor.system("test"),
        name="deploy-prod",
        workflow="deploy",
        notify_provider="webhook",
        notify_url=url,
    )


def _wait_sent(job) -> OutboxMessage:
    return wait_until(
        lambda: OutboxMessage.objects.filter(job=job, status="sent").first(),
        timeout=30,
        interval=0.1,
        message=f"delivery of {job} to be sent",
    )


def test_a_429_delays_the_retry_by_its_retry_after(org, receiver, worker_env, tmp_path):
    receiver.reply(Reply(status=429, headers={"Retry-After": "2"}))
    worker = WorkerProcess(env=worker_env, log_path=tmp_path / "worker.log").start()
    try:
        trigger = _trigger(org, receiver.url())
        job = run(trigger)
        finish(job, "succeeded")
        row = _wait_sent(job)
    finally:
        worker.stop()
    assert row.attempts == 2 and len(receiver.received) == 2
    assert receiver.arrived[1] - receiver.arrived[0] >= 2.0
    verify = readme_verifier()
    assert all(verify(trigger.notify_secret, r.body, r.headers["x-deplite-signature"]) for r in receiver.received)


def test_a_worker_killed_mid_call_sends_again_under_the_same_delivery_id(org, receiver, worker_env, tmp_path):
    in_call, release = threading.Event(), threading.Event()

    def hold_the_first():
        # The endpoint has the event, but its answer never reaches the worker: it dies first.
        if not in_call.is_set():
            in_call.set()
            release.wait(15)

    receiver.hold = hold_the_first
    first = WorkerProcess(env=worker_env, log_path=tmp_path / "first.log").start()
    try:
        job = run(_trigger(org, receiver.url()))
        finish(job, "failed", exit_code=1, error="boom")
        assert in_call.wait(30), first.output()[-2000:]
        assert OutboxMessage.objects.get(job=job).status == "sending"  # claimed with a lease before the call
        first.kill()
    finally:
        first.kill()
        release.set()
    second = WorkerProcess(env=worker_env, log_path=tmp_path / "second.log").start()
    try:

        def sent_or_swept():
            if OutboxMessage.objects.filter(job=job, status="sent").exists():
                return True
            outbox_sweep()  # as beat does, once the dead worker's lease ran out
            return False

        wait_until(sent_or_swept, timeout=30, interval=0.5, message="the delivery to be sent")
    finally:
        second.stop()
    row = OutboxMessage.objects.get(job=job)
    first_try, retry = receiver.received
    assert first_try.headers["x-deplite-delivery"] == retry.headers["x-deplite-delivery"] == str(row.pk)
    assert first_try.body == retry.body
    assert OutboxMessage.objects.filter(job=job).count() == 1
