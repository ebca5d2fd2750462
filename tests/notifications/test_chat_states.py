"""What a chat-started job's one message reads, state by state, through the real chat command
path (signed Slack requests), the agent's events, the finishing services, the outbox and the
fake Slack API (issue 18 item 11: each state reads once, in order; a failure shows once)."""

from __future__ import annotations

import pytest
from django.test import Client

from integrations.models import MessageKind, OutboxMessage
from tests.factories import TriggerFactory
from tests.integrations.conftest import SIGNING_SECRET, mention_event, post_slack_event, post_slash_command
from triggers import services as trigger_services
from triggers.models import Job, TriggerType

from .conftest import finish, start

CHANNEL = "C0123"  # the chat trigger's channel in workspace T0123 (org A's slack_a)


@pytest.fixture
def chat_trigger(org_a, slack_a, fake_slack, settings):
    settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
    settings.SLACK_CLIENT_ID, settings.SLACK_CLIENT_SECRET = "1111.2222", "slack-client-secret"
    return TriggerFactory(
        org=org_a,
        name="deploy-prod",
        type=TriggerType.SLACK,
        chat_provider="slack",
        chat_team_id="T0123",
        chat_channel_id=CHANNEL,
        chat_keyword="deploy",
        default_ref="main",
        chat_run_policy="anyone_in_channel",
    )


def _events(job: Job, *events: dict) -> None:
    job = Job.objects.get(pk=job.pk)
    numbered = [{"seq": job.last_event_seq + i, **event} for i, event in enumerate(events, start=1)]
    trigger_services.job_record_events(job=job, events=numbered)


def _readings(message: dict) -> list[str]:
    """Every text the message showed, first to last (the fake keeps each text an edit replaced)."""
    return [*message["edits"], message["text"]]


def test_a_chat_started_jobs_reply_reads_each_state_once_in_order(
    chat_trigger, fake_slack, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert post_slack_event(Client(), mention_event("deploy")).status_code == 200
    job = start(Job.objects.get())
    with django_capture_on_commit_callbacks(execute=True):
        _events(
            job,
            {"type": "job_started", "steps": [{"name": "Build"}, {"name": "Push"}]},
            {"type": "step_started", "step": 0, "name": "Build"},
        )
    with django_capture_on_commit_callbacks(execute=True):
        _events(job, {"type": "step_finished", "step": 0, "status": "succeeded", "exitCode": 0})
    with django_capture_on_commit_callbacks(execute=True):
        _events(job, {"type": "step_started", "step": 1, "name": "Push"})
    # The last step ends: the reply must not go back to "Starting" before the result.
    with django_capture_on_commit_callbacks(execute=True):
        _events(job, {"type": "step_finished", "step": 1, "status": "succeeded", "exitCode": 0})
    with django_capture_on_commit_callbacks(execute=True):
        job = trigger_services.job_finish(job=Job.objects.get(pk=job.pk), status="succeeded", exit_code=0, error=None)

    [reply] = fake_slack.in_channel(CHANNEL)
    readings = _readings(reply)
    head = f"Job #{job.short_id}"
    assert len(readings) == 4, readings
    assert readings[0].startswith(f"{head} queued — deploy-prod")
    assert readings[1] == f"[RUNNING] {head} — deploy-prod\nRef: main · Step: Build"
    assert readings[2] == f"[RUNNING] {head} — deploy-prod\nRef: main · Step: Push"
    assert readings[3].startswith(f"[SUCCESS] {head} — deploy-prod\n")
    assert not any("Starting" in text for text in readings)
    assert len(fake_slack.posts(CHANNEL)) == 1


def test_a_failed_job_started_in_the_channel_shows_its_failure_there_once(
    chat_trigger, fake_slack, django_capture_on_commit_callbacks
):
    # A slash command's reply is a message of the channel itself, not of a thread.
    with django_capture_on_commit_callbacks(execute=True):
        assert post_slash_command(Client(), "deploy").status_code == 200
    job = Job.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        finish(job, "failed", exit_code=1, error='step "Push" exited with code 1')
    messages = fake_slack.in_channel(CHANNEL)
    assert len(messages) == 1, [m["text"] for m in messages]
    assert messages[0]["thread_ts"] is None
    assert messages[0]["text"].startswith(f"[FAILED] Job #{job.short_id}")
    assert not OutboxMessage.objects.filter(job=job, kind=MessageKind.CHAT_FAILURE).exists()


def test_a_failed_job_started_in_a_thread_is_also_posted_to_its_channel(
    chat_trigger, fake_slack, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_slack_event(Client(), mention_event("deploy"))
    job = Job.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        finish(job, "failed", exit_code=1, error="boom")
    in_thread, in_channel = fake_slack.in_channel(CHANNEL)
    assert in_thread["thread_ts"] == "1355517523.000005" and in_channel["thread_ts"] is None
    assert in_thread["text"] == in_channel["text"] and in_channel["text"].startswith("[FAILED]")
