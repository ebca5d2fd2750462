"""The lost-agent reaper judges an agent by its silence only while the server could hear it (agents.pulse):
a web outage longer than DEPLITE_AGENT_LOST_AFTER_SECONDS fails no job, and after the web tier is back an
agent's silence counts from then. The liveness mark is the web tier's own pulse, not other agents' traffic."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from agents import pulse
from agents.models import ServerPulse
from agents.tasks import agents_reap_lost
from triggers.models import JobStatus

from ..factories import AgentFactory, JobFactory

pytestmark = pytest.mark.django_db

LOST = timedelta(minutes=5)


@pytest.fixture
def silent_agent_job(org_a):
    """The only agent of the org, silent for 6 minutes (past the 5-minute lost timeout), mid-job."""
    now = timezone.now()
    agent = AgentFactory(org=org_a, last_seen_at=now - timedelta(minutes=6))
    return JobFactory(org=org_a, status=JobStatus.RUNNING, agent_id=agent.pk, claimed_at=now - timedelta(minutes=10))


def test_while_the_web_tier_is_down_no_job_is_failed_as_agent_lost(org_a, silent_agent_job, server_up_since):
    # Down for 4 minutes now; until then the agent was heard from (silent 2 minutes before the outage).
    server_up_since(timedelta(hours=1), last_pulse_ago=timedelta(minutes=4))
    assert agents_reap_lost() == 0
    # An agent already silent for the whole lost timeout before the outage began is lost all the same.
    now = timezone.now()
    long_gone = AgentFactory(org=org_a, last_seen_at=now - timedelta(minutes=10))
    JobFactory(org=org_a, status=JobStatus.RUNNING, agent_id=long_gone.pk, claimed_at=now - timedelta(minutes=20))
    assert agents_reap_lost() == 1
    silent_agent_job.refresh_from_db()
    assert silent_agent_job.status == JobStatus.RUNNING


def test_after_the_web_tier_is_back_silence_counts_from_then(silent_agent_job, server_up_since):
    server_up_since(timedelta(minutes=2))  # back for 2 minutes: the agent may still be backing off
    assert agents_reap_lost() == 0
    server_up_since(LOST + timedelta(seconds=5))  # back for longer than the lost timeout, and still silent
    assert agents_reap_lost() == 1
    silent_agent_job.refresh_from_db()
    assert (silent_agent_job.status, silent_agent_job.error) == ("failed", "agent lost")


def test_a_lone_dead_agent_is_found_lost_on_a_server_that_was_up_all_along(silent_agent_job, server_up_since):
    # No other agent talks to the server; its own pulse is what says it was reachable.
    server_up_since(timedelta(hours=1))
    assert agents_reap_lost() == 1


def test_the_pulse_starts_a_new_run_after_a_gap_and_keeps_it_across_processes(settings):
    settings.DEPLITE_SERVER_PULSE_SECONDS = 10
    ServerPulse.objects.all().delete()
    t0 = timezone.now() - timedelta(hours=1)
    pulse.pulse_record(now=t0, run_started=t0)
    # Another process pulsing 20 s later (within the 30 s gap) continues the same run: a rolling restart.
    pulse.pulse_record(now=t0 + timedelta(seconds=20), run_started=t0 + timedelta(seconds=20))
    assert ServerPulse.objects.get().up_since == t0
    # Nothing for two minutes (the web tier was down), then a pulse: a new run begins.
    back = t0 + timedelta(minutes=2, seconds=20)
    pulse.pulse_record(now=back, run_started=back)
    assert ServerPulse.objects.get().up_since == back
    # Silence counts from the web tier's return to its latest pulse, not to now (it may have just stopped).
    assert pulse.reachable_window(back + timedelta(minutes=5)) == (back, back)


@pytest.mark.django_db(transaction=True)
def test_a_web_process_pulses_on_its_own_timer(settings):
    settings.DEPLITE_SERVER_PULSE_SECONDS = 1
    ServerPulse.objects.all().delete()
    thread = pulse._PulseThread()
    thread.start()
    try:
        first = _wait_for_pulse(None)
        second = _wait_for_pulse(first.last_pulse_at)
        assert second.up_since == first.up_since  # one unbroken run
    finally:
        thread.stop.set()
        thread.join(5)


def _wait_for_pulse(after):
    done = threading.Event()
    for _ in range(50):
        row = ServerPulse.objects.filter(pk=pulse.WEB).first()
        if row is not None and (after is None or row.last_pulse_at > after):
            return row
        done.wait(0.1)
    raise AssertionError("no pulse")
