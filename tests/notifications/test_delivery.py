"""Delivery rules and where users see deliveries: another org's workspace, permanent errors, the job
API and page, the retry endpoint and button, recent failures, the admin, and the chat-reply seam."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import MessageKind, MessageStatus, OutboxMessage
from integrations.tasks import outbox_sweep
from notifications import services
from orgs.models import AuditEvent
from triggers.models import JobStep, StepStatus

from .conftest import CHANNEL_A, DISCORD_APP, GUILD_A, finish, open_reply, run, slack_trigger, start


def _finish(job, status, capture, **kw):
    with capture(execute=True):
        return finish(job, status, **kw)


def test_a_target_naming_another_orgs_workspace_is_recorded_not_connected_and_never_sent(
    org_a, slack_a, slack_b, fake_slack, django_capture_on_commit_callbacks
):
    # T0999 is linked, but to org B: org A's trigger cannot borrow it.
    job = run(slack_trigger(org_a, team="T0999", notify_on="always"))
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.last_error, row.installation) == ("failed", "not_connected", None)
    with django_capture_on_commit_callbacks(execute=True):
        outbox_sweep()
    assert fake_slack.calls == []


def test_a_permanent_error_is_recorded_once_and_never_retried(
    org_a, slack_a, fake_slack, settings, django_capture_on_commit_callbacks
):
    settings.DEPLITE_NOTIFY_SWEEP_GRACE_SECONDS = 0
    fake_slack.refuse["C0456"] = "channel_not_found"
    job = run(slack_trigger(org_a))
    _finish(job, "failed", django_capture_on_commit_callbacks, exit_code=1, error="boom")
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.last_error, row.attempts) == ("failed", "channel_not_found", 1)
    OutboxMessage.objects.filter(pk=row.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_sweep() == 0
    assert len(fake_slack.posts()) == 1
    row.refresh_from_db()
    assert row.attempts == 1


def test_a_revoked_token_is_permanent(org_a, slack_a, fake_slack, django_capture_on_commit_callbacks):
    slack_a.bot_token = "xoxb-revoked"
    slack_a.save()
    job = run(slack_trigger(org_a))
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.last_error) == ("failed", "invalid_auth")
    assert fake_slack.in_channel("C0456") == []


def test_a_transient_error_leaves_the_row_pending_for_the_sweeper_in_process(
    org_a, slack_a, fake_slack, settings, django_capture_on_commit_callbacks
):
    """Embedded default (tasks in-process): a 429 is not retried inline; the sweeper sends when due."""
    settings.DEPLITE_NOTIFY_SWEEP_GRACE_SECONDS = 0
    fake_slack.rate_limit["C0456"] = 1
    fake_slack.retry_after = 60  # not due for the sweep below however slow this test runs
    job = run(slack_trigger(org_a))
    attempted_after = timezone.now()
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.last_error) == ("pending", "rate_limited")
    assert row.next_attempt_at >= attempted_after + timedelta(seconds=60)
    with django_capture_on_commit_callbacks(execute=True):
        outbox_sweep()  # not due yet: Retry-After is honoured
    assert fake_slack.in_channel("C0456") == []
    OutboxMessage.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        outbox_sweep()
    row.refresh_from_db()
    assert (row.status, row.attempts, len(fake_slack.in_channel("C0456"))) == ("sent", 2, 1)


def test_a_discord_429_waits_for_its_retry_after_and_a_403_is_permanent(
    org_a, discord_a, fake_discord, django_capture_on_commit_callbacks
):
    fake_discord.rate_limit[CHANNEL_A] = 1
    fake_discord.retry_after = 2.5
    limited = run(slack_trigger(org_a, team=GUILD_A, channel=CHANNEL_A, name="limited"))
    limited.notify_provider = "discord"
    limited.save()
    attempted_after = timezone.now()  # the Retry-After counts from the attempt, not from this assertion
    _finish(limited, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=limited)
    assert (row.status, row.last_error) == ("pending", "rate_limited")
    assert row.next_attempt_at >= attempted_after + timedelta(seconds=2.5)
    fake_discord.refuse[CHANNEL_A] = 403
    refused = run(slack_trigger(org_a, team=GUILD_A, channel=CHANNEL_A, name="refused"))
    refused.notify_provider = "discord"
    refused.save()
    _finish(refused, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=refused)
    assert (row.status, row.last_error, row.attempts) == ("failed", "missing_access", 1)
    assert fake_discord.messages == []


def test_the_sweeper_sends_a_delivery_whose_task_was_lost(
    org_a, slack_a, fake_slack, settings, django_capture_on_commit_callbacks
):
    job = run(slack_trigger(org_a))
    with django_capture_on_commit_callbacks(execute=False):
        # The job finishes, but the enqueue after commit never happens (broker down).
        finish(job, "succeeded")
    with django_capture_on_commit_callbacks(execute=False):
        services.deliveries_for_finished_job(job_id=job.pk)  # the row is written; its task is lost
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, fake_slack.calls) == ("pending", [])
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_sweep() == 0  # within the grace: its task may still come
    OutboxMessage.objects.filter(pk=row.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_sweep() == 1
    row.refresh_from_db()
    assert (row.status, len(fake_slack.in_channel("C0456"))) == ("sent", 1)


def _lost_mid_call(job):
    """The row as a worker SIGKILLed mid-call leaves it: claimed, its lease run out."""
    row = OutboxMessage.objects.get(job=job)
    past = timezone.now() - timedelta(minutes=2)
    OutboxMessage.objects.filter(pk=row.pk).update(
        status=MessageStatus.SENDING, attempts=1, attempt_started_at=past, lease_until=past + timedelta(seconds=60)
    )
    return row


def _finished_but_unsent(job, capture):
    with capture(execute=False):
        finish(job, "succeeded")
    with capture(execute=False):
        services.deliveries_for_finished_job(job_id=job.pk)


@pytest.mark.parametrize("posted_before", [True, False])
def test_after_a_lost_lease_slack_is_asked_before_posting_again(
    posted_before, org_a, slack_a, fake_slack, django_capture_on_commit_callbacks
):
    job = run(slack_trigger(org_a))
    _finished_but_unsent(job, django_capture_on_commit_callbacks)
    row = _lost_mid_call(job)
    if posted_before:
        fake_slack.messages.append(
            {
                "ts": f"{int(timezone.now().timestamp()) - 100}.000001",
                "channel": "C0456",
                "text": "x",
                "thread_ts": None,
                "attachments": None,
                "token": "",
                "received_at": 0,
                "edits": [],
                "metadata": {"event_type": "deplite_notification", "event_payload": {"delivery_id": str(row.pk)}},
            }
        )
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_sweep() == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.uncertain_since) == ("sent", 2, None)
    assert len(fake_slack.in_channel("C0456")) == 1
    assert len(fake_slack.posts()) == (0 if posted_before else 1)
    assert row.provider_message_id == fake_slack.in_channel("C0456")[0]["ts"]


def test_without_history_access_an_unknown_outcome_is_failed_not_posted_twice_until_an_admin_retries(
    api, owner, org_a, slack_a, fake_slack, django_capture_on_commit_callbacks
):
    fake_slack.history_error = "missing_scope"
    job = run(slack_trigger(org_a))
    _finished_but_unsent(job, django_capture_on_commit_callbacks)
    row = _lost_mid_call(job)
    with django_capture_on_commit_callbacks(execute=True):
        outbox_sweep()
    row.refresh_from_db()
    assert (row.status, row.last_error) == ("failed", "outcome_unknown")
    assert fake_slack.posts() == []
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_user(owner).post(f"/api/orgs/acme/jobs/{job.pk}/notifications/{row.pk}/retry")
    assert response.status_code == 202
    row.refresh_from_db()
    assert (row.status, len(fake_slack.posts())) == ("sent", 1)


# --- the job API, the retry endpoint and the page ---------------------------------------------------


@pytest.fixture
def failed_delivery(org_a, slack_a, fake_slack, django_capture_on_commit_callbacks):
    fake_slack.refuse["C0456"] = "not_in_channel"
    job = run(slack_trigger(org_a))
    _finish(job, "failed", django_capture_on_commit_callbacks, exit_code=1, error="boom")
    return OutboxMessage.objects.get(job=job)


def test_the_job_api_lists_its_notifications(api, member, failed_delivery):
    body = api.as_user(member).get(f"/api/orgs/acme/jobs/{failed_delivery.job_id}").json()
    assert body["notifications"] == [
        {
            "id": str(failed_delivery.pk),
            "kind": "result",
            "provider": "slack",
            "channel": "C0456",
            "status": "failed",
            "error": "not_in_channel: Slack refused the message (not_in_channel)",
            "attempts": 1,
            "sentAt": None,
        }
    ]


def test_an_admin_retries_a_failed_delivery_once_the_channel_is_fixed(
    api, owner, failed_delivery, fake_slack, django_capture_on_commit_callbacks
):
    del fake_slack.refuse["C0456"]
    url = f"/api/orgs/acme/jobs/{failed_delivery.job_id}/notifications/{failed_delivery.pk}/retry"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_user(owner).post(url)
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    failed_delivery.refresh_from_db()
    assert failed_delivery.status == "sent"
    assert len(fake_slack.in_channel("C0456")) == 1
    assert AuditEvent.objects.filter(action="notification.retried").count() == 1
    # Sent now: a second retry is a conflict, in the error shape.
    again = api.post(url)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "delivery_not_failed"


def test_retry_is_for_admins_and_the_delivery_of_the_named_job_only(
    api, member, outsider, owner, failed_delivery, org_a, fake_slack
):
    job_id, pk = failed_delivery.job_id, failed_delivery.pk
    url = f"/api/orgs/acme/jobs/{job_id}/notifications/{pk}/retry"
    assert api.as_user(member).post(url).status_code == 403
    assert api.as_user(outsider).post(url).status_code == 404
    other_job = run(slack_trigger(org_a, name="other"))
    wrong = api.as_user(owner).post(f"/api/orgs/acme/jobs/{other_job.pk}/notifications/{pk}/retry")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (404, "not_found")
    assert api.post(f"/api/orgs/acme/jobs/{job_id}/notifications/not-a-uuid/retry").status_code == 404
    failed_delivery.refresh_from_db()
    assert failed_delivery.status == "failed"
    assert len(fake_slack.posts()) == 1


def test_the_job_page_lists_deliveries_with_a_retry_button_for_admins(
    client, owner, member, failed_delivery, fake_slack, django_capture_on_commit_callbacks
):
    page_url = f"/orgs/acme/jobs/{failed_delivery.job_id}"
    client.force_login(member)
    html = client.get(page_url).content.decode()
    assert "not_in_channel" in html and 'data-testid="delivery-failed"' in html
    assert "retry-delivery" not in html
    client.force_login(owner)
    html = client.get(page_url).content.decode()
    assert 'data-testid="retry-delivery"' in html
    del fake_slack.refuse["C0456"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{page_url}/notifications/{failed_delivery.pk}/retry")
    assert response.status_code == 302
    failed_delivery.refresh_from_db()
    assert failed_delivery.status == "sent"
    assert 'data-testid="delivery-sent"' in client.get(page_url).content.decode()


def test_recent_failures_render_as_a_section_for_the_integrations_page(client, owner, outsider, failed_delivery):
    # The section is the outbox's, rendered by the Integrations page itself (no longer a tag that
    # notifications registered there): each org's page shows its own failures only.
    client.force_login(owner)
    html = client.get("/orgs/acme/integrations/").content.decode()
    assert "not_in_channel" in html and f"#{failed_delivery.job.short_id}" in html
    client.force_login(outsider)
    other = client.get("/orgs/bravo/integrations/").content.decode()
    assert "not_in_channel" not in other and "No failed notification." in other


def test_the_admin_lists_deliveries_with_filters_and_never_the_interaction_token(client, owner, failed_delivery):
    owner.is_staff = owner.is_superuser = True
    owner.save()
    OutboxMessage.objects.filter(pk=failed_delivery.pk).update(interaction_token="")
    failed_delivery.interaction_token = "interaction-secret-token"
    failed_delivery.save()
    client.force_login(owner)
    listing = client.get("/admin/integrations/outboxmessage/?status__exact=failed&provider__exact=slack")
    assert listing.status_code == 200 and "C0456" in listing.content.decode()
    empty = client.get("/admin/integrations/outboxmessage/?status__exact=sent")
    assert "C0456" not in empty.content.decode()
    change = client.get(f"/admin/integrations/outboxmessage/{failed_delivery.pk}/change/")
    assert change.status_code == 200
    assert "interaction-secret-token" not in change.content.decode()


# --- chat-started jobs: one message, edited in place -------------------------------------------------


def test_a_slack_chat_job_keeps_one_thread_reply_up_to_date_and_posts_a_failure_to_the_channel(
    org_a, slack_a, fake_slack, django_capture_on_commit_callbacks
):
    trigger = slack_trigger(org_a, notify_on="none")
    job = run(trigger, source="slack")
    with django_capture_on_commit_callbacks(execute=True):
        open_reply(job, installation=slack_a, channel="C0123", thread_ts="1700000000.000100")
    [reply] = fake_slack.in_channel("C0123")
    assert reply["thread_ts"] == "1700000000.000100"
    assert reply["text"] == f"[QUEUED] Job #{job.short_id} — deploy-prod\nRef: main"
    job = start(job)
    with django_capture_on_commit_callbacks(execute=True):
        JobStep.objects.create(org=org_a, job=job, index=0, name="Push", status=StepStatus.RUNNING)
    assert reply["text"] == f"[RUNNING] Job #{job.short_id} — deploy-prod\nRef: main · Step: Push"
    job = _finish(
        job, "failed", django_capture_on_commit_callbacks, exit_code=1, error='timeout exceeded in step "Push"'
    )
    messages = fake_slack.in_channel("C0123")
    assert len(messages) == 2  # the reply (edited) and the failure in the channel itself
    assert messages[0]["text"].startswith(f"[FAILED] Job #{job.short_id}") and len(messages[0]["edits"]) == 2
    assert messages[1]["thread_ts"] is None and messages[1]["text"] == messages[0]["text"]
    kinds = dict(OutboxMessage.objects.filter(job=job).values_list("kind", "status"))
    assert kinds == {MessageKind.CHAT_REPLY: "sent", MessageKind.CHAT_FAILURE: "sent"}
    # notifyOn none: no result delivery.
    assert fake_slack.in_channel("C0456") == []


def test_a_slack_chat_job_already_answered_is_edited_not_posted_again(
    org_a, slack_a, fake_slack, django_capture_on_commit_callbacks
):
    job = run(slack_trigger(org_a, notify_on="always", channel="C0123"), source="slack")
    # The chat side answered the command itself (its own message, ts known).
    fake_slack.messages.append(
        {
            "ts": "1700000000.000200",
            "channel": "C0123",
            "text": "queued",
            "thread_ts": "1700000000.000100",
            "metadata": None,
            "attachments": None,
            "token": "",
            "received_at": 0,
            "edits": [],
        }
    )
    with django_capture_on_commit_callbacks(execute=True):
        open_reply(
            job,
            installation=slack_a,
            channel="C0123",
            thread_ts="1700000000.000100",
            message_id="1700000000.000200",
        )
    assert fake_slack.posts() == []
    job = _finish(job, "succeeded", django_capture_on_commit_callbacks)
    reply = fake_slack.messages[0]
    assert reply["text"].startswith(f"[SUCCESS] Job #{job.short_id}")
    # The trigger's own notify target is the same channel: that result is posted too (notifyOn always).
    assert len(fake_slack.posts("C0123")) == 1


def test_a_discord_chat_job_edits_the_interactions_original_response(
    org_a, discord_a, fake_discord, django_capture_on_commit_callbacks
):
    job = run(slack_trigger(org_a, notify_on="none"), source="discord")
    fake_discord.interactions["itoken"] = {"id": "555", "content": "thinking", "edits": []}
    with django_capture_on_commit_callbacks(execute=True):
        open_reply(job, installation=discord_a, channel=CHANNEL_A, interaction_token="itoken")
    original = fake_discord.interactions["itoken"]
    assert original["content"].startswith(f"[QUEUED] Job #{job.short_id}")
    job = _finish(job, "cancelled", django_capture_on_commit_callbacks)
    assert original["content"].startswith(f"[CANCELLED] Job #{job.short_id}")
    # The original response is a message of the channel itself: the failure shows there once,
    # not a second time as a channel post (issue 18 item 11).
    assert fake_discord.in_channel(CHANNEL_A) == []
    assert [c.method for c in fake_discord.calls].count("post") == 0
    assert all(DISCORD_APP in c.path for c in fake_discord.calls if c.method == "update")
    assert GUILD_A == discord_a.external_id


def test_a_chat_reply_refuses_another_orgs_installation(org_a, slack_b):
    job = run(slack_trigger(org_a))
    with pytest.raises(ValueError):
        open_reply(job, installation=slack_b, channel="C1")
    assert OutboxMessage.objects.count() == 0
    assert MessageStatus.PENDING == "pending"


def test_an_operator_retries_a_failed_delivery_from_the_admin_through_the_service(
    client, owner, failed_delivery, fake_slack, django_capture_on_commit_callbacks
):
    owner.is_staff = owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    del fake_slack.refuse["C0456"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/integrations/outboxmessage/",
            {"action": "retry", "_selected_action": [str(failed_delivery.pk)]},
            follow=True,
        )
    assert "done for 1" in response.content.decode()
    failed_delivery.refresh_from_db()
    assert failed_delivery.status == "sent"
    assert len(fake_slack.in_channel("C0456")) == 1
    event = AuditEvent.objects.get(action="notification.retried")
    assert event.actor_label == f"admin:{owner.email}"


def test_the_integrations_page_shows_recent_notification_failures(client, owner, failed_delivery):
    client.force_login(owner)
    html = client.get("/orgs/acme/integrations/").content.decode()
    assert 'data-testid="notification-failures"' in html
    assert "not_in_channel" in html and f"#{failed_delivery.job.short_id}" in html


def test_an_admins_retry_of_a_failed_reply_sends_the_jobs_latest_state(
    api, owner, org_a, slack_a, fake_slack, django_capture_on_commit_callbacks
):
    fake_slack.refuse["C0123"] = "not_in_channel"
    job = run(slack_trigger(org_a, notify_on="none"), source="slack")
    with django_capture_on_commit_callbacks(execute=True):
        reply = open_reply(job, installation=slack_a, channel="C0123", thread_ts="1700000000.000100")
    reply.refresh_from_db()
    assert (reply.status, reply.last_error) == ("failed", "not_in_channel")
    job = _finish(job, "succeeded", django_capture_on_commit_callbacks)
    del fake_slack.refuse["C0123"]  # the bot was invited meanwhile
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_user(owner).post(f"/api/orgs/acme/jobs/{job.pk}/notifications/{reply.pk}/retry")
    assert response.status_code == 202
    [message] = fake_slack.in_channel("C0123")
    assert message["text"].startswith(f"[SUCCESS] Job #{job.short_id}")
    assert message["thread_ts"] == "1700000000.000100"
