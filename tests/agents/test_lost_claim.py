"""A job handed to an agent whose claim answer was lost: the agent's heartbeat lists the jobs it holds
(`runningJobs`), and the server takes back the others once the claim is older than the grace."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from orgs.models import AuditEvent
from triggers.models import Job, JobStatus, JobStep, StepStatus
from triggers.services import job_recover_unheld

from ..factories import AgentFactory, JobFactory

GRACE = 60


@pytest.fixture(autouse=True)
def grace(settings):
    settings.DEPLITE_CLAIM_CONFIRM_GRACE_SECONDS = GRACE


@pytest.fixture
def dispatched(monkeypatch):
    """The job ids the recovery asked to wake agents for (the worker task itself is tested elsewhere)."""
    seen = []
    monkeypatch.setattr("triggers.services.runs.job_enqueue_dispatch", lambda *, job_id: seen.append(job_id))
    return seen


def handed_out(agent, *, seconds_ago: float, **fields) -> Job:
    """A job claimed for `agent` that long ago, as the claim leaves it."""
    return JobFactory(
        org=agent.org,
        status=JobStatus.RUNNING,
        agent_id=agent.pk,
        agent_name=agent.name,
        claimed_at=timezone.now() - timedelta(seconds=seconds_ago),
        **fields,
    )


def test_a_job_never_started_and_not_listed_goes_back_to_the_queue_and_wakes_agents(
    client, agent, dispatched, finished_signals, django_capture_on_commit_callbacks
):
    job = handed_out(agent, seconds_ago=GRACE + 30)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.heartbeat(runningJobs=[])
    assert response.status_code == 200, response.content
    job.refresh_from_db()
    assert (job.status, job.agent_id, job.agent_name, job.claimed_at) == (JobStatus.QUEUED, None, "", None)
    assert dispatched == [job.pk]
    assert finished_signals == []  # not a final state
    event = AuditEvent.objects.get(action="job.requeued")
    assert (event.actor_kind, event.actor_id, event.target_id) == ("agent", str(agent.pk), str(job.pk))
    # Back in the queue, it is claimable again, by this agent too.
    assert client.claim().json()["id"] == str(job.pk)


def test_a_job_claimed_within_the_grace_is_left_running(client, agent, dispatched):
    job = handed_out(agent, seconds_ago=GRACE - 20)
    assert client.heartbeat(runningJobs=[]).status_code == 200
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.agent_id == agent.pk
    assert dispatched == []


def test_the_grace_counts_from_the_signed_time_so_an_old_heartbeat_cannot_disown_a_newer_claim(agent, dispatched):
    """A heartbeat built before the claim answer arrived but delivered late is judged by when it was built."""
    job = handed_out(agent, seconds_ago=GRACE + 30)
    built = timezone.now() - timedelta(seconds=45)  # 15 s after the claim: within the grace then
    job_recover_unheld(org=agent.org, agent_id=agent.pk, agent_name=agent.name, held_job_ids=[], signed_at=built)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.agent_id == agent.pk


def test_an_agent_clock_running_ahead_does_not_shorten_the_grace(agent, dispatched):
    job = handed_out(agent, seconds_ago=GRACE - 20)
    job_recover_unheld(
        org=agent.org,
        agent_id=agent.pk,
        agent_name=agent.name,
        held_job_ids=[],
        signed_at=timezone.now() + timedelta(seconds=240),
    )
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING


def test_a_listed_job_is_left_running(client, agent, dispatched):
    job = handed_out(agent, seconds_ago=GRACE + 600)
    assert client.heartbeat(runningJobs=[str(job.pk)]).status_code == 200
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.agent_id == agent.pk


def test_a_job_the_server_received_events_for_fails_as_lost_and_signals_once(
    client, agent, dispatched, finished_signals, django_capture_on_commit_callbacks
):
    job = handed_out(agent, seconds_ago=GRACE + 30, last_event_seq=4, started_at=timezone.now())
    step = JobStep.objects.create(org=agent.org, job=job, index=0, name="build", status=StepStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.heartbeat(runningJobs=[]).status_code == 200
        assert client.heartbeat(runningJobs=[]).status_code == 200  # a second heartbeat changes nothing more
    job.refresh_from_db()
    step.refresh_from_db()
    assert (job.status, job.error, job.agent_id) == (JobStatus.FAILED, "agent lost the job", agent.pk)
    assert job.finished_at is not None and step.status == StepStatus.FAILED
    assert finished_signals == [(job.pk, agent.org_id, JobStatus.FAILED)]
    assert dispatched == []
    assert AuditEvent.objects.filter(action="job.failed", target_id=str(job.pk)).count() == 1
    # The agent that comes back with a late report is told the job is over.
    assert client.finish(job.pk, status="succeeded", exit_code=0).status_code == 409


def test_a_cancel_requested_job_never_started_ends_cancelled_rather_than_queued(
    client, agent, dispatched, finished_signals, django_capture_on_commit_callbacks
):
    job = handed_out(agent, seconds_ago=GRACE + 30, cancel_requested=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.heartbeat(runningJobs=[]).status_code == 200
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert finished_signals == [(job.pk, agent.org_id, JobStatus.CANCELLED)]
    assert dispatched == []


def test_a_heartbeat_without_the_key_changes_nothing(client, agent, dispatched):
    """An older agent does not send runningJobs: saying nothing must not read as holding nothing."""
    never_started = handed_out(agent, seconds_ago=GRACE + 600)
    started = handed_out(agent, seconds_ago=GRACE + 600, last_event_seq=2)
    assert client.heartbeat().status_code == 200
    for job in (never_started, started):
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING and job.agent_id == agent.pk
    assert not AuditEvent.objects.filter(action__in=["job.requeued", "job.failed"]).exists()


def test_another_agents_jobs_are_untouched(client, agent, org_a, org_b, dispatched):
    same_org = handed_out(AgentFactory(org=org_a, name="web-2"), seconds_ago=GRACE + 600)
    other_org = handed_out(AgentFactory(org=org_b, name="web-1"), seconds_ago=GRACE + 600, last_event_seq=3)
    mine = handed_out(agent, seconds_ago=GRACE + 600)
    assert client.heartbeat(runningJobs=[]).status_code == 200
    for job in (same_org, other_org):
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING
    mine.refresh_from_db()
    assert mine.status == JobStatus.QUEUED


def test_a_job_already_finished_is_not_touched(client, agent, dispatched, finished_signals):
    job = handed_out(agent, seconds_ago=GRACE + 600)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    assert client.heartbeat(runningJobs=[]).status_code == 200
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and finished_signals == []


@pytest.mark.parametrize(
    "running_jobs",
    [["not-a-uuid"], "abc", [1], None, ["00000000-0000-0000-0000-000000000000"] * 1001],
)
def test_a_malformed_list_is_a_validation_error_not_a_500(client, agent, running_jobs):
    job = handed_out(agent, seconds_ago=GRACE + 600)
    response = client.heartbeat(runningJobs=running_jobs)
    assert response.status_code in (400, 422), response.content
    assert "error" in response.json()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING


def test_the_heartbeat_time_is_the_signed_one(client, agent, dispatched):
    """A replayed-late heartbeat signed 50 s ago (inside the signature window) is judged as of then."""
    job = handed_out(agent, seconds_ago=GRACE + 20)
    path = "/api/agent/heartbeat"
    raw = b'{"hostname": "web-1", "version": "1", "workflows": [], "runningJobs": []}'
    header = client.header("POST", path, raw, ts=int(time.time()) - 50)
    assert client.send("POST", path, raw, header).status_code == 200
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
