"""A job the server failed as `agent lost` while its agent was only cut off: when the agent comes back
with the job's log and result, they are taken (status corrected, audited, the posted message edited),
unless a re-run of the job has taken its place. Through the signed agent protocol, the real services
and the local fake Slack API."""

from __future__ import annotations

import pytest

from orgs.actors import Actor
from orgs.models import AuditEvent
from tests.agents.signed import SignedAgent
from tests.factories import AgentFactory
from triggers import services as trigger_services
from triggers.models import Job, JobLogChunk, JobSource, JobStatus, JobStep

from .conftest import run, slack_trigger

pytestmark = pytest.mark.django_db


def log_text(job: Job) -> str:
    return "".join(JobLogChunk.objects.filter(job=job).order_by("seq").values_list("data", flat=True))


@pytest.fixture
def lost_job(org_a, slack_a, fake_slack, django_capture_on_commit_callbacks):
    """A job its agent started (3 events), then failed by the lost-agent reaper; the failure is posted."""
    agent = AgentFactory(org=org_a, labels=[])
    job = run(slack_trigger(org_a, notify_on="always"))
    client = SignedAgent(agent)
    assert client.claim().json()["id"] == str(job.pk)
    early = [
        {"seq": 1, "type": "job_started", "steps": [{"name": "build"}, {"name": "deploy"}]},
        {"seq": 2, "type": "step_started", "step": 0, "name": "build"},
        {"seq": 3, "type": "log", "step": 0, "data": "line 1\n"},
    ]
    assert client.events(job.pk, early).json()["acceptedThrough"] == 3
    with django_capture_on_commit_callbacks(execute=True):
        assert trigger_services.job_fail(
            job_id=job.pk, error=trigger_services.AGENT_LOST, from_statuses=[JobStatus.RUNNING]
        )
    [posted] = fake_slack.in_channel("C0456")
    assert posted["text"].startswith("[FAILED]")
    return job, client


LATE = [
    {"seq": 4, "type": "log", "step": 0, "data": "line 2\n"},
    {"seq": 5, "type": "step_finished", "step": 0, "status": "succeeded", "exitCode": 0},
    {"seq": 6, "type": "step_started", "step": 1, "name": "deploy"},
    {"seq": 7, "type": "log", "step": 1, "data": "line 3\n"},
    {"seq": 8, "type": "step_finished", "step": 1, "status": "succeeded", "exitCode": 0},
]


def test_an_agent_back_after_being_reaped_as_lost_gets_its_log_and_result_taken(
    lost_job, fake_slack, django_capture_on_commit_callbacks
):
    job, client = lost_job
    answer = client.events(job.pk, LATE).json()
    assert answer == {"acceptedThrough": 8, "cancelRequested": False}  # keep going: nothing took its place
    with django_capture_on_commit_callbacks(execute=True):
        finished = client.finish(job.pk, status="succeeded", exit_code=0)
    assert finished.status_code == 200, finished.content
    assert finished.json()["status"] == "succeeded"

    job.refresh_from_db()
    assert (job.status, job.exit_code, job.error) == ("succeeded", 0, "")
    assert log_text(job) == "line 1\nline 2\nline 3\n"
    assert list(JobStep.objects.filter(job=job).order_by("index").values_list("status", flat=True)) == [
        "succeeded",
        "succeeded",
    ]
    audit = AuditEvent.objects.get(action="job.result_corrected", target_id=str(job.pk))
    assert audit.actor_kind == "agent"
    assert audit.data["status"] == "succeeded"
    assert audit.data["was"] == {"status": "failed", "error": "agent lost"}
    # The posted failure was edited into the result, not announced a second time.
    [message] = fake_slack.in_channel("C0456")
    assert message["text"].startswith(f"[SUCCESS] Job #{job.short_id}")
    assert message["edits"] and message["edits"][0].startswith("[FAILED]")
    assert len(fake_slack.posts()) == 1
    # The same report again changes nothing.
    assert client.finish(job.pk, status="succeeded", exit_code=0).status_code == 200
    assert AuditEvent.objects.filter(action="job.result_corrected", target_id=str(job.pk)).count() == 1


def test_after_a_rerun_the_late_log_and_result_are_kept_and_audited_and_the_status_stays(
    lost_job, fake_slack, django_capture_on_commit_callbacks
):
    job, client = lost_job
    rerun = trigger_services.job_rerun(job=job, actor=Actor.system("test"), source=JobSource.API)
    answer = client.events(job.pk, LATE).json()
    assert answer == {"acceptedThrough": 8, "cancelRequested": True}  # stored, and the agent is told to stop
    with django_capture_on_commit_callbacks(execute=True):
        refused = client.finish(job.pk, status="succeeded", exit_code=0)
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["status"] == "failed"

    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", "agent lost")
    assert log_text(job) == "line 1\nline 2\nline 3\n"
    kept = AuditEvent.objects.get(action="job.late_result_kept", target_id=str(job.pk))
    assert (kept.data["status"], kept.data["exitCode"]) == ("succeeded", 0)
    assert not AuditEvent.objects.filter(action="job.result_corrected").exists()
    [message] = fake_slack.in_channel("C0456")
    assert message["text"].startswith("[FAILED]") and not message["edits"]
    assert Job.objects.get(pk=rerun.job_id).rerun_of_id == job.pk
    client.finish(job.pk, status="succeeded", exit_code=0)  # a resend is not audited twice
    assert AuditEvent.objects.filter(action="job.late_result_kept", target_id=str(job.pk)).count() == 1


def test_a_job_that_timed_out_still_takes_no_late_events(lost_job):
    job, client = lost_job
    Job.objects.filter(pk=job.pk).update(error="timeout exceeded: the job ran longer than 60 minutes")
    assert client.events(job.pk, LATE).json() == {"acceptedThrough": 3, "cancelRequested": True}
    assert log_text(job) == "line 1\n"
