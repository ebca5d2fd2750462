"""Delivery with a real Celery worker process against the fake Slack API: Retry-After, permanent
errors, the per-channel pace, and a worker SIGKILLed mid-delivery.

Rows must be committed for the worker to see them: every test uses `transactional_db`.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings
from pytest_httpserver import HTTPServer

from deplite.celery import app as celery_app
from integrations.models import OutboxMessage
from integrations.tasks import outbox_sweep
from tests.agent_program.harness import wait_until
from tests.chat_fakes import FakeSlack
from tests.e2e.stack import WorkerProcess, stack_env
from tests.factories import InstallationFactory, MembershipFactory, OrganizationFactory

from .conftest import SLACK_TOKEN, finish, run, slack_trigger

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.real_worker]
LEASE_SECONDS = 3


@pytest.fixture(autouse=True)
def _isolated_cache_and_eager_tasks():
    """Overrides the suite-wide fixture: tasks go to the worker, and the Redis database holding its
    queue must not be flushed under it (see tests/e2e/conftest.py)."""
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = old


@pytest.fixture
def fake(transactional_db):
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield FakeSlack(server, tokens={SLACK_TOKEN})
    server.clear()
    server.stop()


@pytest.fixture
def worker_env(fake, tmp_path):
    env = stack_env(public_url="http://127.0.0.1:8000")
    env.update(SLACK_API_URL=fake.url, DEPLITE_NOTIFY_LEASE_SECONDS=str(LEASE_SECONDS))
    return env


@pytest.fixture
def worker(worker_env, tmp_path):
    process = WorkerProcess(env=worker_env, log_path=tmp_path / "worker.log").start()
    yield process
    process.stop()


@pytest.fixture
def org(transactional_db):
    org = OrganizationFactory(name="Acme", slug="acme")
    MembershipFactory(org=org)
    InstallationFactory(org=org, provider="slack", external_id="T0123", bot_token=SLACK_TOKEN)
    return org


def _row(job) -> OutboxMessage:
    return OutboxMessage.objects.get(job=job)


def _wait_row(job, status: str, timeout: float = 30) -> OutboxMessage:
    return wait_until(
        lambda: OutboxMessage.objects.filter(job=job, status=status).first(),
        timeout=timeout,
        interval=0.1,
        message=f"delivery of {job} to be {status}",
    )


def test_a_429_delays_the_retry_by_its_retry_after(org, fake, worker):
    fake.rate_limit["C0429"] = 1
    fake.retry_after = 2
    job = run(slack_trigger(org, channel="C0429"))
    finish(job, "succeeded")
    row = _wait_row(job, "sent")
    posts = fake.posts("C0429")
    assert len(posts) == 2
    assert posts[1].at - posts[0].at >= 2.0
    assert (row.attempts, len(fake.in_channel("C0429"))) == (2, 1)


def test_a_transient_error_is_retried_by_the_worker_with_backoff(org, fake, worker):
    fake.server_errors["C0500"] = 2
    job = run(slack_trigger(org, channel="C0500"))
    finish(job, "succeeded")
    row = _wait_row(job, "sent")
    assert (row.attempts, len(fake.posts("C0500")), len(fake.in_channel("C0500"))) == (3, 3, 1)
    assert row.last_error == ""


def test_a_permanent_error_is_recorded_once_and_never_retried_by_the_worker(org, fake, worker):
    fake.refuse["C0404"] = "channel_not_found"
    job = run(slack_trigger(org, channel="C0404"))
    finish(job, "failed", exit_code=1, error="boom")
    row = _wait_row(job, "failed")
    assert (row.last_error, row.attempts) == ("channel_not_found", 1)
    outbox_sweep()
    time.sleep(3)  # room for any (wrong) retry to show
    assert len(fake.posts("C0404")) == 1
    assert _row(job).attempts == 1


def test_results_to_one_channel_leave_about_one_a_second(org, fake, worker):
    jobs = [run(slack_trigger(org, channel="C0PACE", name=f"deploy-{i}")) for i in range(4)]
    for job in jobs:
        finish(job, "succeeded")
    fake.wait_for(lambda: len(fake.in_channel("C0PACE")) == 4, timeout=30)
    received = sorted(m["received_at"] for m in fake.in_channel("C0PACE"))
    gaps = [b - a for a, b in zip(received, received[1:], strict=False)]
    assert min(gaps) >= settings.DEPLITE_NOTIFY_CHANNEL_INTERVAL * 0.8, gaps
    assert len(fake.posts("C0PACE")) == 4  # paced, not bounced off 429s


def test_a_worker_killed_mid_delivery_yields_exactly_one_message_after_restart(org, fake, worker_env, tmp_path):
    in_call, release = threading.Event(), threading.Event()

    def slow_first_post(body):
        # Slack takes the message, but the answer never reaches the worker: it dies first.
        if not in_call.is_set():
            in_call.set()
            release.wait(15)

    fake.hold = slow_first_post
    first = WorkerProcess(env=worker_env, log_path=tmp_path / "first.log").start()
    try:
        job = run(slack_trigger(org, channel="C0KILL"))
        finish(job, "failed", exit_code=1, error="boom")
        assert in_call.wait(30), first.output()[-2000:]
        assert _row(job).status == "sending"  # claimed with a lease before the call
        first.kill()  # SIGKILL mid-call
    finally:
        first.kill()
        release.set()
    fake.wait_for(lambda: len(fake.in_channel("C0KILL")) == 1)
    second = WorkerProcess(env=worker_env, log_path=tmp_path / "second.log").start()
    try:
        # The beat sweeper re-enqueues the delivery once the dead worker's lease ran out.
        def sent_or_swept():
            if _row(job).status == "sent":
                return True
            outbox_sweep()
            return False

        try:
            wait_until(sent_or_swept, timeout=30, interval=0.5, message="the delivery to be sent")
        except AssertionError as timed_out:
            raise AssertionError(second.output()[-3000:]) from timed_out
        row = _row(job)
    finally:
        second.stop()
    [message] = fake.in_channel("C0KILL")
    assert len(fake.posts("C0KILL")) == 1
    assert row.provider_message_id == message["ts"]
    assert row.attempts == 2
    assert [c.method for c in fake.calls].count("conversations.history") == 1


# Slots are a full interval apart, but a message a busy worker sends late (by up to this share of an
# interval) shortens the gap to the next one: the k-th message after another comes at least
# (k - PACE_JITTER) intervals after it. A burst, or a retry that takes no slot, breaks that (a gap of ~0).
PACE_JITTER = 0.9


def _assert_paced(times: list[float], interval: float) -> None:
    ordered = sorted(times)
    too_soon = [
        (j - i, round(ordered[j] - ordered[i], 3))
        for i in range(len(ordered))
        for j in range(i + 1, len(ordered))
        if ordered[j] - ordered[i] < (j - i - PACE_JITTER) * interval
    ]
    assert too_soon == [], (too_soon, _gaps(ordered))


def _gaps(times: list[float]) -> list[float]:
    ordered = sorted(times)
    return [round(b - a, 3) for a, b in zip(ordered, ordered[1:], strict=False)]


def test_retries_after_server_errors_keep_the_channels_pace(org, fake, worker):
    """Issue 18 item 11: a retry after a 500 takes a slot of the channel's pace like any attempt."""
    fake.server_errors["C0RETRY"] = 5
    jobs = [run(slack_trigger(org, channel="C0RETRY", name=f"deploy-{i}")) for i in range(5)]
    for job in jobs:
        finish(job, "succeeded")
    fake.wait_for(lambda: len(fake.in_channel("C0RETRY")) == 5, timeout=90)
    calls = [c.at for c in fake.posts("C0RETRY")]
    assert len(calls) == 10  # five 500s, five messages
    _assert_paced(calls, settings.DEPLITE_NOTIFY_CHANNEL_INTERVAL)


def test_a_killed_workers_paced_backlog_moves_again_within_ten_seconds(org, fake, worker_env, tmp_path):
    """Issue 18 item 11: the paced messages a killed worker held (countdown tasks, unacknowledged
    until the broker's visibility timeout) are taken over by the sweeper within seconds."""
    count = 8
    first = WorkerProcess(env=worker_env, log_path=tmp_path / "first.log").start()
    second = None
    try:
        jobs = [run(slack_trigger(org, channel="C0BACK", name=f"deploy-{i}")) for i in range(count)]
        for job in jobs:
            finish(job, "succeeded")
        # Every message but the first waits for its slot, as a countdown task the first worker holds.
        paced = OutboxMessage.objects.filter(job__in=jobs, status="pending", next_attempt_at__isnull=False)
        fake.wait_for(lambda: paced.count() >= count - 2, timeout=30)
        first.kill()
        left = count - len(fake.in_channel("C0BACK"))
        assert left >= 2, "the backlog was sent before the kill: nothing left to prove"
        # A worker is up again (others keep running in production; its start-up is not measured).
        second = WorkerProcess(env=worker_env, log_path=tmp_path / "second.log").start()
        ready_at = time.time()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(fake.in_channel("C0BACK")) < count:
            outbox_sweep()  # what beat runs every 2 s
            time.sleep(2)
    finally:
        first.kill()
        if second is not None:
            second.stop()
    received = [m["received_at"] for m in fake.in_channel("C0BACK")]
    moved = sorted(t for t in received if t > ready_at)
    assert len(received) == count, (left, second.output()[-2000:])
    print(f"\n{left} held by the killed worker; the first moved {moved[0] - ready_at:.1f}s after a worker was up")  # noqa: T201
    assert moved and moved[0] - ready_at <= 10, moved[0] - ready_at
    _assert_paced(received, settings.DEPLITE_NOTIFY_CHANNEL_INTERVAL)
    assert len(fake.posts("C0BACK")) == count  # each exactly once
