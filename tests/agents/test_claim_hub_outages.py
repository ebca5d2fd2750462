"""The process's wake-up subscription (agents.waiters) through real Redis faults: its connection killed at
the server, Redis refusing connections, Redis gone silent. The hub must notice, come back within a bounded
time, and a claim that polled meanwhile must go back to waiting on it, so that a job's wake-up reaches it
(the hub's delivered counter) instead of its next poll."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings
from django.db import connections
from django.test import Client

from agents import waiters
from agents.protocol import claim as protocol_claim
from triggers import wakeups

from ..agent_program.harness import wait_until
from ..factories import AgentFactory, JobFactory
from ..ops.tcp_proxy import TcpProxy
from .signed import SignedAgent

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# The longest a lost subscription may take to come back once Redis answers again: the wait between
# attempts, one attempt's connect and answer timeouts, and a second of slack for a loaded machine.
BACK_WITHIN = waiters.RECONNECT_SECONDS + 2 + waiters.ANSWER_SECONDS + 1


class Looks:
    """Every claim query the claims make, counted as they start and as they end."""

    def __init__(self):
        self.started = 0
        self.finished = 0

    @property
    def idle(self) -> bool:
        return self.started == self.finished


@pytest.fixture
def looks(monkeypatch):
    seen = Looks()
    real = protocol_claim._claim_once

    def counting(agent):
        seen.started += 1
        try:
            return real(agent)
        finally:
            seen.finished += 1

    monkeypatch.setattr(protocol_claim, "_claim_once", counting)
    return seen


@pytest.fixture
def redis_link(settings):
    """The process's Redis reached through a link the test can cut, close or silence: the process's hub
    (and the wake-ups published) go through it."""
    real = urlsplit(settings.REDIS_URL)
    proxy = TcpProxy(real.hostname, real.port or 6379).open()
    settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}{real.path or '/0'}"
    hub = waiters.hub()  # swapped now, not inside a claim
    wait_until(lambda: hub.connected, timeout=BACK_WITHIN, interval=0.02, message="the hub to connect")
    yield proxy, hub
    proxy.close()  # first: a listener blocked on the link returns at once
    hub.stop()


def _claim_in_thread(agent, wait: int) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            response = SignedAgent(agent, client=Client()).claim(wait=wait)
            out["status"] = response.status_code
            out["body"] = response.json() if response.status_code == 200 else None
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _waits_on_hub(hub, org_id, looks: Looks) -> None:
    """Until the claim is registered with the hub, its look done, for a while: only a wake-up makes it
    look again. (Registered and idle for an instant is also a claim about to leave a hub that went down.)"""
    since: list[float] = []

    def settled_a_while():
        if hub.waiting(org_id) == 1 and looks.idle:
            since[:] = since or [time.monotonic()]
            return time.monotonic() - since[0] >= 0.3
        since.clear()
        return False

    wait_until(settled_a_while, timeout=BACK_WITHIN + 2, interval=0.02, message="the claim to wait on the hub")


def _woken_by_the_hub(hub, org, looks: Looks, thread, out) -> None:
    """A job and its wake-up: the waiting claim gets it through the hub, with one look."""
    delivered, started = hub.delivered, looks.started
    job = JobFactory(org=org)
    wakeups.publish_jobs_available(org_id=org.pk, labels=[])
    thread.join(timeout=10)
    assert (out.get("status"), (out.get("body") or {}).get("id")) == (200, str(job.pk))
    assert hub.delivered == delivered + 1
    assert looks.started == started + 1  # the woken look, no poll
    assert hub.waiting(org.pk) == 0


def _subscription_ids(admin: redis.Redis, hub) -> list[int]:
    return [int(c["id"]) for c in admin.client_list(_type="pubsub") if c.get("name") == hub.client_name]


def test_a_killed_subscription_is_made_again_and_its_waiting_claim_is_woken_through_the_new_one(org_a, looks):
    """`CLIENT KILL` of the hub's own connection (found by its name; `TYPE pubsub` would cut every
    subscriber of the shared server). The claim looks again (wake-ups sent meanwhile are lost), then waits on
    the new subscription."""
    hub = waiters.hub()
    wait_until(lambda: hub.connected, timeout=BACK_WITHIN, interval=0.02, message="the hub to connect")
    admin = redis.Redis.from_url(settings.REDIS_URL)
    agent = AgentFactory(org=org_a)
    thread, out = _claim_in_thread(agent, 25)
    _waits_on_hub(hub, org_a.pk, looks)
    [old] = _subscription_ids(admin, hub)

    admin.client_kill_filter(_id=old)

    new = wait_until(
        lambda: [i for i in _subscription_ids(admin, hub) if i != old] if hub.connected else None,
        timeout=BACK_WITHIN,
        interval=0.02,
        message="a new subscription",
    )
    assert len(new) == 1
    wait_until(lambda: looks.started >= 2, timeout=5, interval=0.02, message="the claim to look again")
    _waits_on_hub(hub, org_a.pk, looks)
    _woken_by_the_hub(hub, org_a, looks, thread, out)


def test_a_claim_begun_while_redis_refused_connections_waits_on_the_hub_once_redis_is_back(org_a, looks, redis_link):
    proxy, hub = redis_link
    proxy.close()  # Redis gone: connections cut and refused
    wait_until(lambda: not hub.connected, timeout=BACK_WITHIN, interval=0.02, message="the hub to notice")
    agent = AgentFactory(org=org_a)
    thread, out = _claim_in_thread(agent, 25)
    # Its first look, then (the hub not back within CONNECT_WAIT_SECONDS) a poll a second.
    wait_until(lambda: looks.started >= 3, timeout=10, interval=0.02, message="the claim to poll")
    assert hub.waiting(org_a.pk) == 0

    proxy.open()

    wait_until(lambda: hub.connected, timeout=BACK_WITHIN, interval=0.02, message="the hub to come back")
    _waits_on_hub(hub, org_a.pk, looks)
    _woken_by_the_hub(hub, org_a, looks, thread, out)


def test_a_silent_redis_is_noticed_and_the_claim_waits_on_the_hub_again_once_redis_answers(
    org_a, looks, redis_link, monkeypatch
):
    """Redis (or the path to it) stops answering without closing anything: no error ever comes, only
    silence, which the hub notices by pinging its quiet subscription."""
    monkeypatch.setattr(waiters, "PING_SECONDS", 0.5)
    monkeypatch.setattr(waiters, "ANSWER_SECONDS", 1.0)
    proxy, hub = redis_link
    agent = AgentFactory(org=org_a)
    thread, out = _claim_in_thread(agent, 25)
    _waits_on_hub(hub, org_a.pk, looks)

    proxy.pause()

    # Noticed within a ping's wait and its answer's (plus one read of the listener's loop).
    wait_until(lambda: not hub.connected, timeout=0.5 + 1.0 + 1 + 2, interval=0.02, message="the hub to notice")
    wait_until(lambda: looks.started >= 3, timeout=10, interval=0.02, message="the claim to poll")
    assert hub.waiting(org_a.pk) == 0

    proxy.resume()

    wait_until(lambda: hub.connected, timeout=BACK_WITHIN, interval=0.02, message="the hub to come back")
    _waits_on_hub(hub, org_a.pk, looks)
    _woken_by_the_hub(hub, org_a, looks, thread, out)
