"""The agent protocol end to end through signed requests: heartbeat, claim, events, finish."""

from __future__ import annotations

import pytest
from django.utils import timezone

from triggers.models import Job, JobLogChunk, JobStatus, JobStep

from ..factories import AgentFactory, JobFactory, TriggerFactory
from .signed import SignedAgent

AT = "2026-01-02T03:04:05Z"


def claimed(client, org, **trigger_fields) -> Job:
    job = JobFactory(org=org, trigger=TriggerFactory(org=org, **trigger_fields), params={"ENV": "prod"})
    response = client.claim()
    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(job.pk)
    job.refresh_from_db()
    return job


def test_heartbeat_records_the_host_and_answers_who_the_agent_is(client, agent):
    response = client.heartbeat(hostname="web-1.acme", version="1.4.0", workflows=["deploy", "migrate"])
    assert response.status_code == 200
    body = response.json()
    assert body["agentId"] == str(agent.pk) and body["name"] == "web-1" and body["labels"] == ["eu", "prod"]
    assert "serverTime" in body
    agent.refresh_from_db()
    assert (agent.hostname, agent.version, agent.workflows) == ("web-1.acme", "1.4.0", ["deploy", "migrate"])
    assert agent.status == "online"


def test_claim_returns_the_job_payload_and_marks_it_running(client, agent, org_a):
    trigger = TriggerFactory(org=org_a, name="deploy-prod", workflow="deploy", agent_labels=["prod"])
    job = JobFactory(org=org_a, trigger=trigger, ref="v1.2", params={"ACTOR": "octocat"})
    response = client.claim()
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "id": str(job.pk),
        "shortId": job.short_id,
        "workflow": "deploy",
        "ref": "v1.2",
        "params": {"ACTOR": "octocat"},
        "trigger": {"id": str(trigger.pk), "name": "deploy-prod"},
        "inputFiles": [],
        "createdAt": body["createdAt"],
        "jobToken": body["jobToken"],
    }
    assert body["jobToken"].startswith("djt_")
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.agent_id == agent.pk and job.claimed_at is not None
    assert job.agent_name == "web-1"
    assert client.claim().status_code == 204  # nothing left


def test_claim_takes_the_oldest_job_first(client, org_a):
    older = JobFactory(org=org_a, created_at=timezone.now() - timezone.timedelta(minutes=5))
    JobFactory(org=org_a)
    assert client.claim().json()["id"] == str(older.pk)


def test_claim_skips_jobs_whose_labels_the_agent_lacks(client, org_a):
    needs_gpu = JobFactory(org=org_a, trigger=TriggerFactory(org=org_a, agent_labels=["gpu"]))
    needs_prod = JobFactory(org=org_a, trigger=TriggerFactory(org=org_a, agent_labels=["prod", "eu"]))
    assert client.claim().json()["id"] == str(needs_prod.pk)
    assert client.claim().status_code == 204
    needs_gpu.refresh_from_db()
    assert needs_gpu.status == JobStatus.QUEUED


def test_claim_skips_jobs_waiting_for_input_files(client, org_a):
    job = JobFactory(org=org_a, waiting_for_files=True)
    assert client.claim().status_code == 204
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.agent_id is None


@pytest.mark.parametrize("wait", ["31", "-1", "soon"])
def test_claim_with_a_bad_wait_is_a_400(client, wait):
    response = client.post(f"/api/agent/jobs/claim?wait={wait}", {})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_claim_with_wait_and_no_job_answers_204_after_polling(client, settings):
    settings.REDIS_URL = ""  # embedded default: the wait polls the database
    response = client.claim(wait=1)
    assert response.status_code == 204


def test_events_record_steps_and_logs_idempotently(client, org_a):
    job = claimed(client, org_a)
    events = [
        {"seq": 1, "type": "job_started", "at": AT, "timeoutMinutes": 20},
        {"seq": 2, "type": "step_started", "at": AT, "step": 0, "name": "download"},
        {"seq": 3, "type": "log", "at": AT, "step": 0, "data": "fetching build.tar.gz\n"},
        {"seq": 4, "type": "log", "at": AT, "step": None, "data": "  indented output kept as is  "},
        {
            "seq": 5,
            "type": "step_finished",
            "at": AT,
            "step": 0,
            "name": "download",
            "status": "succeeded",
            "exitCode": 0,
        },
    ]
    response = client.events(job.pk, events)
    assert response.status_code == 200
    assert response.json() == {"acceptedThrough": 5, "cancelRequested": False}
    # The same batch again (a retry after a lost answer) changes nothing.
    assert client.events(job.pk, events).json() == {"acceptedThrough": 5, "cancelRequested": False}
    job.refresh_from_db()
    assert job.timeout_minutes == 20 and job.started_at is not None
    assert list(JobLogChunk.objects.filter(job=job).values_list("seq", "step", "data")) == [
        (1, 0, "fetching build.tar.gz\n"),
        (2, None, "  indented output kept as is  "),
    ]
    step = JobStep.objects.get(job=job)
    assert (step.index, step.name, step.status, step.exit_code) == (0, "download", "succeeded", 0)
    # A batch overlapping the accepted one applies only the new events.
    more = [events[-1], {"seq": 6, "type": "log", "at": AT, "step": 1, "data": "next"}]
    assert client.events(job.pk, more).json()["acceptedThrough"] == 6
    assert JobLogChunk.objects.filter(job=job).count() == 3


@pytest.mark.parametrize(
    "event",
    [
        {"seq": 0, "type": "log", "data": "x"},
        {"seq": 1, "type": "shell", "data": "rm -rf /"},
        {"seq": 1, "type": "step_started", "name": "no index"},
        {"seq": 1, "type": "step_finished", "step": 0, "status": "exploded"},
        {"seq": 1, "type": "log"},
        {"seq": "one", "type": "log", "data": "x"},
    ],
)
def test_malformed_events_are_a_400_and_record_nothing(client, org_a, event):
    job = claimed(client, org_a)
    response = client.events(job.pk, [event])
    assert response.status_code == 400
    job.refresh_from_db()
    assert job.last_event_seq == 0 and JobLogChunk.objects.count() == 0


def test_log_is_capped_with_a_visible_truncation_marker(client, org_a, settings):
    settings.DEPLITE_JOB_LOG_MAX_BYTES = 10
    job = claimed(client, org_a)
    client.events(job.pk, [{"seq": 1, "type": "log", "step": 0, "data": "123456"}])
    client.events(job.pk, [{"seq": 2, "type": "log", "step": 0, "data": "789abcdef"}])
    client.events(job.pk, [{"seq": 3, "type": "log", "step": 0, "data": "LOST-OUTPUT"}])
    text = "".join(JobLogChunk.objects.filter(job=job).order_by("seq").values_list("data", flat=True))
    assert text.startswith("123456789a")
    assert "Log truncated" in text and "LOST-OUTPUT" not in text
    job.refresh_from_db()
    assert job.log_truncated and job.log_bytes == 10


def test_finish_twice_is_idempotent_and_fires_job_finished_once(
    client, org_a, finished_signals, django_capture_on_commit_callbacks
):
    job = claimed(client, org_a)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.finish(job.pk, "failed", 2, 'step "Push" exited with code 2')
        second = client.finish(job.pk, "failed", 2, 'step "Push" exited with code 2')
    assert first.status_code == second.status_code == 200
    assert first.json() == {"id": str(job.pk), "status": "failed"}
    job.refresh_from_db()
    assert (job.status, job.exit_code, job.error) == ("failed", 2, 'step "Push" exited with code 2')
    assert job.finished_at is not None
    assert finished_signals == [(job.pk, org_a.pk, "failed")]


def test_conflicting_second_finish_is_a_409_and_keeps_the_first(client, org_a):
    job = claimed(client, org_a)
    assert client.finish(job.pk, "succeeded", 0).status_code == 200
    response = client.finish(job.pk, "failed", 1)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "job_already_finished"
    job.refresh_from_db()
    assert job.status == "succeeded" and job.exit_code == 0


def test_job_finished_is_sent_only_after_commit(client, org_a, finished_signals, django_capture_on_commit_callbacks):
    job = claimed(client, org_a)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.finish(job.pk, "succeeded", 0)
    assert finished_signals == []
    for callback in callbacks:
        callback()
    assert finished_signals == [(job.pk, org_a.pk, "succeeded")]


def test_cancel_of_a_running_job_reaches_the_agent_in_the_events_answer(client, api, member, org_a):
    job = claimed(client, org_a)
    response = api.as_user(member).post(f"/api/orgs/acme/jobs/{job.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "running" and response.json()["cancelRequested"] is True
    answer = client.events(job.pk, [{"seq": 1, "type": "log", "step": 0, "data": "still going"}])
    assert answer.json() == {"acceptedThrough": 1, "cancelRequested": True}
    assert client.finish(job.pk, "cancelled", None).status_code == 200
    job.refresh_from_db()
    assert job.status == "cancelled" and job.error == "cancelled"


def test_events_for_a_job_that_was_failed_meanwhile_tell_the_agent_to_stop(client, org_a):
    from triggers.services import job_fail

    job = claimed(client, org_a)
    # (A job failed as "agent lost" takes its agent's late report: tests/notifications/test_late_result.py.)
    job_fail(job_id=job.pk, error='timeout exceeded in step "deploy"', from_statuses=[JobStatus.RUNNING])
    answer = client.events(job.pk, [{"seq": 1, "type": "log", "step": 0, "data": "late"}])
    assert answer.status_code == 200 and answer.json()["cancelRequested"] is True
    assert JobLogChunk.objects.count() == 0
    assert client.finish(job.pk, "succeeded", 0).status_code == 409


def test_another_agent_of_the_same_org_cannot_report_on_a_job_it_did_not_claim(client, org_a):
    job = claimed(client, org_a)
    sibling = SignedAgent(AgentFactory(org=org_a, labels=["prod"]))
    assert sibling.events(job.pk, [{"seq": 1, "type": "log", "data": "x"}]).status_code == 404
    assert sibling.finish(job.pk).status_code == 404
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.last_event_seq == 0


def test_unknown_job_and_malformed_ids_are_404(client):
    assert client.finish("00000000-0000-4000-8000-000000000000").status_code == 404
    assert client.finish("not-a-uuid").status_code == 404
    assert client.get("/api/agent/files/not-a-uuid/download-url").status_code == 404


def test_agent_of_org_a_cannot_claim_see_report_on_or_download_anything_of_org_b(org_a, org_b):
    agent_a = SignedAgent(AgentFactory(org=org_a, labels=["prod"]))
    agent_b = SignedAgent(AgentFactory(org=org_b, labels=["prod"]))
    job_b = JobFactory(org=org_b)
    assert agent_a.claim().status_code == 204
    job_b.refresh_from_db()
    assert job_b.status == JobStatus.QUEUED
    assert agent_b.claim().status_code == 200  # B's own agent gets it
    assert agent_a.events(job_b.pk, [{"seq": 1, "type": "log", "data": "x"}]).status_code == 404
    assert agent_a.finish(job_b.pk).status_code == 404
    job_b.refresh_from_db()
    assert job_b.status == JobStatus.RUNNING and job_b.last_event_seq == 0
    # A file id of org B (or any id the agent's org does not own) is a 404.
    some_file_of_b = "8c1d6a8e-6f2a-4d53-9d55-2f3c7a1b0e11"
    assert agent_a.get(f"/api/agent/files/{some_file_of_b}/download-url").status_code == 404


def test_get_on_claim_is_a_405_in_the_error_shape_naming_the_allowed_method(client):
    response = client.get("/api/agent/jobs/claim")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response["Allow"] == "POST"  # RFC 9110; found by the schema fuzz run once the claim was in the schema


def test_an_empty_events_batch_is_the_silent_steps_cancel_poll(client, api, member, org_a):
    job = claimed(client, org_a)
    assert client.events(job.pk, []).json() == {"acceptedThrough": 0, "cancelRequested": False}
    api.as_user(member).post(f"/api/orgs/acme/jobs/{job.pk}/cancel")
    assert client.events(job.pk, []).json()["cancelRequested"] is True


def test_a_fractional_workflow_timeout_is_accepted_and_rounded_up(client, org_a):
    job = claimed(client, org_a)
    response = client.events(job.pk, [{"seq": 1, "type": "job_started", "at": AT, "timeoutMinutes": 0.5}])
    assert response.status_code == 200, response.content
    job.refresh_from_db()
    assert job.timeout_minutes == 1
