"""Getting a new job to a waiting agent: with Redis, the run endpoint publishes a wake-up after commit, the
web process's one subscription hands it to the waiting claim, which ends the agent's long poll."""

from __future__ import annotations

import signal
import time
from datetime import datetime

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def _seconds_between(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


@pytest.mark.redis
def test_with_redis_a_waiting_agent_gets_a_new_job_by_its_wake_up(e2e):
    assert e2e.stack.worker is not None
    # A waiting claim never looks again on its own (agents.waiters): a claim well inside the agent's 30 s long
    # poll is the wake-up's. How fast: `make bench` (wakeup).
    e2e.home.write_workflow("ping", "name: ping\nsteps:\n  - name: Ping\n    run: echo pong\n")
    trigger = e2e.create_trigger("ping")
    e2e.start_agent()  # the default long poll: 30 s
    assert e2e.wait_job(e2e.run(trigger)["jobId"])["status"] == "succeeded"
    # The agent is back in a long poll and past its first look at the queue.
    time.sleep(1.5)

    job = e2e.wait_job(e2e.run(trigger)["jobId"])

    assert job["status"] == "succeeded"
    assert _seconds_between(job["createdAt"], job["claimedAt"]) < 15  # not its long poll's end


def test_an_idle_agent_stops_promptly_on_sigterm_and_its_abandoned_claim_takes_no_job(e2e):
    e2e.home.write_workflow("ping", "name: ping\nsteps:\n  - name: Ping\n    run: echo pong\n")
    trigger = e2e.create_trigger("ping")
    agent = e2e.start_agent()  # the default long poll: 30 s
    time.sleep(2)  # connected and waiting in a long poll

    asked = time.monotonic()
    agent.signal(signal.SIGTERM)

    assert agent.wait(timeout=40) == 0
    assert time.monotonic() - asked < 5
    assert "claim failed" not in agent.output()
    # The server stopped waiting on the agent's behalf when the connection closed: a new job is not
    # claimed for an agent that is gone (a waiting claim looks again at least every second without Redis,
    # and at once on a wake-up with it).
    job_id = e2e.run(trigger)["jobId"]
    time.sleep(2.5)
    job = e2e.job(job_id)
    assert (job["status"], job["agentId"]) == ("queued", None)
