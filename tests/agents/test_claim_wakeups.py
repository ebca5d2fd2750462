"""Waiting claims share one Redis subscription per process and a job wakes exactly one of them."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import redis
from django.conf import settings
from django.db import connections
from django.test import Client

from agents import waiters
from agents.protocol import claim as protocol_claim
from orgs.models import TokenScope
from triggers import wakeups

from ..agent_program.harness import wait_until
from ..factories import AgentFactory, TriggerFactory, make_token
from ..ops.tcp_proxy import TcpProxy
from .signed import SignedAgent

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def claim_attempts(monkeypatch):
    """Every claim query a waiting claim makes, by agent id."""
    seen: list = []
    real = protocol_claim._claim_once

    def counting(agent):
        seen.append(agent.pk)
        return real(agent)

    monkeypatch.setattr(protocol_claim, "_claim_once", counting)
    return seen


def _waiting_claim(agent, wait: int, results: dict):
    def run():
        try:
            response = SignedAgent(agent, client=Client()).claim(wait=wait)
            results[agent.pk] = (response.status_code, response.json() if response.status_code == 200 else None)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _run(trigger, raw_token) -> str:
    response = Client().post(
        f"/triggers/{trigger.pk}/run", "{}", content_type="text/plain", HTTP_AUTHORIZATION=f"Bearer {raw_token}"
    )
    assert response.status_code == 202, response.content
    return response.json()["jobId"]


def test_one_job_wakes_exactly_one_waiting_claim_and_the_others_keep_waiting_without_a_query(org_a, claim_attempts):
    agents = [AgentFactory(org=org_a, labels=["prod"]) for _ in range(5)]
    trigger = TriggerFactory(org=org_a, agent_labels=["prod"])
    _, raw = make_token(org_a, scope_type=TokenScope.TRIGGER, trigger_ids=[str(trigger.pk)])
    hub = waiters.hub()
    # The process's subscription may still be reconnecting after an earlier test's Redis fault: claims
    # started before it is up poll instead of waiting on it, which is not what this test is about.
    wait_until(lambda: hub.connected, timeout=30, interval=0.02, message="the hub to connect")
    results: dict = {}
    threads = [_waiting_claim(agent, 15, results) for agent in agents]
    wait_until(
        lambda: hub.waiting(org_a.pk) == 5 and len(claim_attempts) == 5,
        timeout=30,
        interval=0.02,
        message="five claims to wait",
    )
    delivered_before = hub.delivered

    first_job = _run(trigger, raw)

    wait_until(lambda: len(results) == 1, timeout=30, interval=0.02, message="one claim to answer")
    time.sleep(0.5)  # room for any other waiter to (wrongly) wake and query
    ((winner, (status, body)),) = results.items()
    assert (status, body["id"]) == (200, first_job)
    assert len(claim_attempts) == 6  # five first looks, then one claim for one job
    assert claim_attempts[-1] == winner
    assert hub.delivered - delivered_before == 1
    assert hub.waiting(org_a.pk) == 4

    # Four more jobs: each wakes one of the four others, and each gets its own job.
    more = {_run(trigger, raw) for _ in range(4)}
    for t in threads:
        t.join(timeout=20)
    assert {status for status, _ in results.values()} == {200}
    assert {body["id"] for _, body in results.values()} == more | {first_job}
    assert len(claim_attempts) == 10
    assert hub.waiting(org_a.pk) == 0


def test_a_job_wakes_only_a_waiter_whose_labels_fit(org_a, claim_attempts):
    staging = AgentFactory(org=org_a, labels=["staging"])
    prod = AgentFactory(org=org_a, labels=["prod"])
    trigger = TriggerFactory(org=org_a, agent_labels=["prod"])
    _, raw = make_token(org_a, scope_type=TokenScope.TRIGGER, trigger_ids=[str(trigger.pk)])
    hub = waiters.hub()
    results: dict = {}
    threads = [_waiting_claim(staging, 3, results)]  # waiting the longest, but cannot take the job
    wait_until(lambda: hub.waiting(org_a.pk) == 1, timeout=30, interval=0.02, message="the staging claim to wait")
    threads.append(_waiting_claim(prod, 10, results))
    wait_until(
        lambda: hub.waiting(org_a.pk) == 2 and len(claim_attempts) == 2,
        timeout=30,
        interval=0.02,
        message="both claims to wait",
    )

    job_id = _run(trigger, raw)

    for t in threads:
        t.join(timeout=20)
    assert results[prod.pk] == (200, results[prod.pk][1]) and results[prod.pk][1]["id"] == job_id
    assert results[staging.pk] == (204, None)
    assert claim_attempts.count(staging.pk) == 1  # its first look only


def _loop_waiters(hub, org_id, count):
    loop = asyncio.new_event_loop()
    return loop, [hub.register(org_id=org_id, labels=["prod"], loop=loop) for _ in range(count)]


def test_a_wake_up_whose_chosen_waiter_is_gone_goes_to_the_next_waiter():
    hub = waiters.ClaimWaiters(settings.REDIS_URL)
    loop, (first, second) = _loop_waiters(hub, "org-1", 2)
    try:
        wake = {"id": None, "org": "org-1", "labels": ["prod"]}
        assert hub.deliver(wake)
        loop.run_until_complete(asyncio.wait_for(first.event.wait(), 2))
        assert first.pending == wake and second.pending is None

        hub.unregister(first)  # its agent hung up before using the wake-up

        loop.run_until_complete(asyncio.wait_for(second.event.wait(), 2))
        assert second.pending["org"] == "org-1"
        assert hub.delivered == 2 and hub.waiting("org-1") == 0
    finally:
        loop.close()


def test_a_wake_up_whose_last_waiter_is_gone_is_published_again_for_the_other_processes():
    hub = waiters.ClaimWaiters(settings.REDIS_URL)
    loop, (only,) = _loop_waiters(hub, "org-2", 1)
    listener = redis.Redis.from_url(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(wakeups.CHANNEL)
    try:
        assert hub.deliver({"id": None, "org": "org-2", "labels": ["prod"]})
        hub.unregister(only)

        message = wait_until(
            lambda: listener.get_message(timeout=0.5), timeout=5, interval=0, message="the wake-up published again"
        )
        again = json.loads(message["data"])
        assert (again["org"], again["labels"], again["hops"]) == ("org-2", ["prod"], 1)
        assert hub.forwarded == 1
    finally:
        listener.close()
        loop.close()


def test_only_one_process_acts_on_a_wake_up():
    one, other = waiters.ClaimWaiters(settings.REDIS_URL), waiters.ClaimWaiters(settings.REDIS_URL)
    loop_one, _ = _loop_waiters(one, "org-3", 1)
    loop_other, _ = _loop_waiters(other, "org-3", 1)
    try:
        wake = {"id": f"test-{time.time_ns()}", "org": "org-3", "labels": []}
        one.deliver(wake)
        other.deliver(wake)
        assert one.delivered + other.delivered == 1
    finally:
        loop_one.close()
        loop_other.close()


def test_the_hub_is_connected_only_once_redis_confirmed_its_subscription(org_a):
    """A claim registers once the hub is connected and then relies on a wake-up: the subscription
    must be live at Redis by then. The link here holds every client→Redis chunk back 0.3 s, so a
    SUBSCRIBE merely sent is not yet in force."""
    target = redis.Redis.from_url(settings.REDIS_URL).connection_pool.connection_kwargs
    proxy = TcpProxy(target["host"], target["port"], upstream_delay=0.3).open()
    hub = waiters.ClaimWaiters(f"redis://127.0.0.1:{proxy.port}/0")
    loop, (waiter,) = _loop_waiters(hub, str(org_a.pk), 1)
    try:
        hub.start()
        wait_until(lambda: hub.connected, timeout=30, interval=0.02, message="the hub to connect")
        wakeups.publish_jobs_available(org_id=org_a.pk, labels=["prod"])  # straight to Redis
        loop.run_until_complete(asyncio.wait_for(waiter.event.wait(), 5))
        assert waiter.pending["org"] == str(org_a.pk)
    finally:
        hub.stop()
        proxy.close()
        loop.close()


@pytest.fixture
def redis_down(settings):
    """Wake-ups on a Redis that refuses connections (the process's subscription cannot come up)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    # Swap the process's hub now, not inside a timed claim: stopping the previous hub's listener
    # waits out its blocking read of up to a second (agents.waiters: get_message(timeout=1.0)).
    waiters.hub()
    yield
    hub = waiters.hub()  # the one listening to the dead Redis: stop its reconnect loop
    if hub is not None:
        hub.stop()


def test_with_redis_down_a_waiting_claim_takes_a_job_at_hand_at_once(org_a, redis_down):
    from ..factories import JobFactory

    agent = AgentFactory(org=org_a)
    job = JobFactory(org=org_a)
    started = time.monotonic()
    response = SignedAgent(agent, client=Client()).claim(wait=10)
    assert response.status_code == 200 and response.json()["id"] == str(job.pk)
    assert time.monotonic() - started < waiters.CONNECT_WAIT_SECONDS


def test_with_redis_down_a_waiting_claim_polls_and_answers_204_when_its_wait_ends(org_a, redis_down):
    agent = AgentFactory(org=org_a)
    response = SignedAgent(agent, client=Client()).claim(wait=3)
    assert response.status_code == 204
