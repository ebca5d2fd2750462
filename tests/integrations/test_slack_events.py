"""Slack events and the slash command through slack-bolt: signatures, de-duplication,
routing only within the installation's org, replies only from tasks."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from integrations import tasks
from integrations.models import ChatCommand, CommandKind, CommandOutcome, Installation, OutboxMessage
from orgs.models import AuditEvent
from tests.factories import InstallationFactory, TriggerFactory
from triggers.models import Job, JobSource, TriggerType

from .conftest import CHANNEL, TEAM, mention_event, post_slack_event, post_slash_command, reply_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(slack_api):
    return Client()


def slack_calls(server, method: str) -> list[dict]:
    """The arguments of each call to `method` the fake Slack received (JSON or form body)."""
    return server.requests(method)


def expect_post_message(server, ts="1503435956.000247"):
    """The ts Slack gives the next message posted."""
    server.next_ts.append(ts)


# --- signatures ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sign",
    [
        lambda: {"secret": "not-the-signing-secret"},  # bad signature
        lambda: {"ts": int(time.time()) - 310},  # stale: outside the 5-minute window
        lambda: {"ts": int(time.time()) + 310},
        lambda: {"ts": "yesterday"},  # malformed
        lambda: {"ts": ""},
    ],
    ids=["bad-signature", "stale", "future", "malformed-ts", "empty-ts"],
)
def test_unsigned_or_stale_requests_are_401_and_create_nothing(client, slack_install, slack_trigger, sign):
    # Timestamps are taken when the test runs, not when it is collected.
    response = post_slash_command(client, "deploy", **sign())
    assert response.status_code == 401
    response = post_slack_event(client, mention_event("deploy"), **sign())
    assert response.status_code == 401
    assert not Job.objects.exists()
    assert not ChatCommand.objects.exists()


def test_a_changed_body_breaks_the_signature(client, slack_install, slack_trigger):
    from .conftest import slack_headers

    body = json.dumps(mention_event("deploy"))
    headers = slack_headers(body)
    tampered = body.replace("deploy", "destroy")
    response = client.post("/integrations/slack/events", data=tampered, content_type="application/json", **headers)
    assert response.status_code == 401
    assert not Job.objects.exists()


def test_url_verification_echoes_the_challenge(client):
    response = post_slack_event(client, {"type": "url_verification", "token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV"})
    assert response.status_code == 200
    assert "3eZbrw1aBm2rZgRNFdxV" in response.content.decode()


def test_unconfigured_slack_refuses_events_with_a_clear_error(settings):
    settings.SLACK_SIGNING_SECRET = ""
    response = Client().post("/integrations/slack/events", data="{}", content_type="application/json")
    assert response.status_code == 503
    assert "SLACK_SIGNING_SECRET" in response.json()["error"]["message"]


# --- commands create jobs --------------------------------------------------------------------------------


def test_slash_command_creates_one_job_with_ref_and_params(client, slack_api, slack_install, slack_trigger):
    response = post_slash_command(client, "deploy ref=feature/x ENV=prod")
    assert response.status_code == 200
    job = Job.objects.get()
    assert (job.trigger, job.ref, job.params, job.source) == (
        slack_trigger,
        "feature/x",
        {"ENV": "prod"},
        JobSource.SLACK,
    )
    assert "alice" in job.actor_label and "U2147483697" in job.actor_label
    answer = response.json()
    assert answer["response_type"] == "ephemeral"
    assert f"#{job.short_id}" in answer["text"] and job.url in answer["text"]
    command = ChatCommand.objects.get()
    assert (command.org, command.installation, command.job, command.kind) == (
        slack_trigger.org,
        slack_install,
        job,
        CommandKind.SLACK_SLASH,
    )
    assert (command.team_id, command.channel_id, command.user_id, command.user_name) == (
        TEAM,
        CHANNEL,
        "U2147483697",
        "alice",
    )
    assert command.response_url == "https://hooks.slack.com/commands/1234/5678"
    assert AuditEvent.objects.filter(action="job.created", actor_label=job.actor_label).exists()
    # The answer went back before any Slack API call (db-wrapped test: on_commit never ran).
    assert slack_api.calls == []


def test_mention_creates_one_job_and_the_task_replies_in_its_thread(
    client, slack_api, slack_install, slack_trigger, django_capture_on_commit_callbacks
):
    expect_post_message(slack_api, ts="1700000000.000100")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_slack_event(client, mention_event("deploy ref=feature/x ENV=prod"))
    assert response.status_code == 200
    job = Job.objects.get()
    assert (job.ref, job.params, job.source) == ("feature/x", {"ENV": "prod"}, JobSource.SLACK)
    (call,) = slack_calls(slack_api, "chat.postMessage")
    assert call["channel"] == CHANNEL
    assert call["thread_ts"] == "1355517523.000005"
    assert f"Job #{job.short_id} queued" in call["text"] and job.url in call["text"]
    assert call["_auth"] == f"Bearer {slack_install.bot_token}"
    command = ChatCommand.objects.get()
    assert (reply_of(command).status, reply_of(command).provider_message_id, command.thread_ts) == (
        "sent",
        "1700000000.000100",
        "1355517523.000005",
    )


def test_params_echoed_in_a_slack_reply_are_escaped_and_ping_nobody(
    client, slack_api, slack_install, slack_trigger, django_capture_on_commit_callbacks
):
    # `@channel` typed in Slack arrives as `<!channel>`: echoed as is, the bot would ping the channel.
    expect_post_message(slack_api)
    with django_capture_on_commit_callbacks(execute=True):
        post_slack_event(client, mention_event("deploy X=<!channel> Y=a&b"))
    job = Job.objects.get()
    assert job.params == {"X": "<!channel>", "Y": "a&b"}
    (call,) = slack_calls(slack_api, "chat.postMessage")
    assert "X=&lt;!channel&gt; Y=a&amp;b" in call["text"]
    assert "<!channel>" not in call["text"]
    assert call["text"].endswith(f"<{job.url}|View job>")  # Deplite's own link stays a link


def test_a_refusal_quoting_the_command_is_escaped_for_slack(client, slack_install, slack_trigger):
    answer = post_slash_command(client, "<!here>").json()["text"]
    assert "<!here>" not in answer
    assert "&lt;!here&gt;" in answer


def test_retried_event_creates_exactly_one_job(client, slack_install, slack_trigger):
    for retry in (None, 1, 2):
        response = post_slack_event(client, mention_event("deploy"), retry=retry)
        assert response.status_code == 200
    assert Job.objects.count() == 1
    assert ChatCommand.objects.count() == 1


def test_the_reply_task_posts_once_even_when_run_twice(client, slack_api, slack_install, slack_trigger):
    expect_post_message(slack_api)
    post_slack_event(client, mention_event("deploy"))
    command = ChatCommand.objects.get()
    assert tasks.outbox_send(str(reply_of(command).pk)) == "sent"
    assert tasks.outbox_send(str(reply_of(command).pk)) == "not_owed"
    assert len(slack_calls(slack_api, "chat.postMessage")) == 1


def test_a_permanent_slack_error_is_recorded_not_retried(client, slack_api, slack_install, slack_trigger):
    slack_api.refuse[CHANNEL] = "not_in_channel"
    post_slack_event(client, mention_event("deploy"))
    command = ChatCommand.objects.get()
    assert tasks.outbox_send(str(reply_of(command).pk)) == "failed"
    assert (reply_of(command).status, reply_of(command).last_error) == ("failed", "not_in_channel")


def test_slash_command_job_message_is_posted_to_the_channel(
    client, slack_api, slack_install, slack_trigger, django_capture_on_commit_callbacks
):
    expect_post_message(slack_api, ts="1700000000.000200")
    with django_capture_on_commit_callbacks(execute=True):
        post_slash_command(client, "deploy")
    (call,) = slack_calls(slack_api, "chat.postMessage")
    assert call["channel"] == CHANNEL and "thread_ts" not in call
    assert reply_of(ChatCommand.objects.get()).provider_message_id == "1700000000.000200"


# --- org isolation ---------------------------------------------------------------------------------------


def test_another_org_with_the_same_channel_and_keyword_never_receives_the_command(
    client, api, org_a, org_b, admin_of_b, slack_install, slack_trigger
):
    # Org B writes a trigger naming org A's team, channel and keyword: allowed (per-org
    # constraint) but marked not connected, and it never gets org A's commands.
    response = api.as_user(admin_of_b).post(
        "/api/orgs/bravo/triggers",
        json.dumps(
            {
                "type": "slack",
                "chatProvider": "slack",
                "chatTeamId": TEAM,
                "chatChannelId": CHANNEL,
                "chatKeyword": "deploy",
            }
        ),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["chatConnected"] is False
    for text in ("deploy", "deploy ref=v2"):
        post_slash_command(client, text, trigger_id=f"t-{text}")
    assert set(Job.objects.values_list("org_id", flat=True)) == {org_a.pk}
    assert Job.objects.filter(trigger=slack_trigger).count() == 2


def test_refusal_lists_only_this_orgs_keywords(client, org_a, org_b, slack_install, slack_trigger):
    TriggerFactory(
        org=org_a,
        type=TriggerType.SLACK,
        chat_provider="slack",
        chat_team_id=TEAM,
        chat_channel_id=CHANNEL,
        chat_keyword="rollback",
    )
    TriggerFactory(
        org=org_a,
        type=TriggerType.SLACK,
        chat_provider="slack",
        chat_team_id=TEAM,
        chat_channel_id="C0OTHER",
        chat_keyword="elsewhere",
    )
    TriggerFactory(
        org=org_b,
        type=TriggerType.SLACK,
        chat_provider="slack",
        chat_team_id=TEAM,
        chat_channel_id=CHANNEL,
        chat_keyword="secret-b",
    )
    response = post_slash_command(client, "destroy")
    text = response.json()["text"]
    assert "No trigger for `destroy` in this channel" in text
    assert "`deploy`" in text and "`rollback`" in text
    assert "elsewhere" not in text and "secret-b" not in text
    assert not Job.objects.exists()
    command = ChatCommand.objects.get()
    assert command.outcome == CommandOutcome.REFUSED
    assert not OutboxMessage.objects.filter(command=command).exists()  # answered in the HTTP response


def test_unknown_team_gets_a_helpful_answer_and_no_job(client, slack_trigger):
    response = post_slash_command(client, "deploy", team="T0UNKNOWN")
    assert response.status_code == 200
    assert "not linked to a Deplite organization" in response.json()["text"]
    assert not Job.objects.exists() and not ChatCommand.objects.exists()


def test_disabled_trigger_is_refused(client, slack_install, slack_trigger):
    slack_trigger.enabled = False
    slack_trigger.save()
    text = post_slash_command(client, "deploy").json()["text"]
    assert "deploy-prod" in text and "disabled" in text
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deploy 1BAD=x", "params.1BAD"),
        ("deploy ref=-rf", "ref: A ref cannot start with '-'"),
        ("deploy ENV", "`ENV` is not KEY=value"),
        ("deploy ENV=a ENV=b", "ENV is given twice"),
        ("", "Name a keyword"),
        ('deploy "ENV=unbalanced', "Unbalanced quotes"),
    ],
)
def test_bad_params_are_refused_with_the_rule(client, slack_install, slack_trigger, text, expected):
    answer = post_slash_command(client, text).json()["text"]
    assert expected in answer
    assert "Keywords in this channel: `deploy`" in answer
    assert not Job.objects.exists()


def test_a_mention_refusal_is_answered_privately_in_its_thread_by_the_task(
    client, slack_api, slack_install, slack_trigger, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_slack_event(client, mention_event("nope"))
    assert slack_calls(slack_api, "chat.postMessage") == []
    (call,) = slack_calls(slack_api, "chat.postEphemeral")
    assert "No trigger for `nope`" in call["text"] and call["thread_ts"] == "1355517523.000005"
    assert call["user"] == "U061F7AUR"
    assert not Job.objects.exists()


# --- uninstall --------------------------------------------------------------------------------------------


def test_app_uninstalled_removes_the_installation(client, slack_install):
    payload = {"type": "event_callback", "team_id": TEAM, "event_id": "EvU1", "event": {"type": "app_uninstalled"}}
    assert post_slack_event(client, payload).status_code == 200
    assert not Installation.objects.exists()
    assert AuditEvent.objects.filter(action="integration.removed", data__reason="app_uninstalled").exists()


def test_tokens_revoked_removes_the_installation(client, slack_install):
    payload = {
        "type": "event_callback",
        "team_id": TEAM,
        "event_id": "EvR1",
        "event": {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["U0BOT"]}},
    }
    assert post_slack_event(client, payload).status_code == 200
    assert not Installation.objects.exists()


def test_other_events_are_acknowledged(client, slack_install):
    payload = {
        "type": "event_callback",
        "team_id": TEAM,
        "event_id": "EvM1",
        "event": {"type": "message", "text": "hi"},
    }
    assert post_slack_event(client, payload).status_code == 200
    assert not ChatCommand.objects.exists()


# --- Redis down ---------------------------------------------------------------------------------------------


def test_with_redis_down_the_command_is_answered_the_job_written_and_the_reply_sent_later(
    client, slack_api, slack_install, slack_trigger, dead_broker, django_capture_on_commit_callbacks
):
    caplog = dead_broker
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_slack_event(client, mention_event("deploy ref=hotfix"))
    elapsed = time.monotonic() - started
    print(f"\nmention answered in {elapsed:.3f}s with the broker down")  # noqa: T201 (measured, not asserted)
    assert response.status_code == 200
    assert callbacks  # the reply enqueue (and the job dispatch) were attempted after commit…
    assert "Could not enqueue integrations.tasks.outbox_send" in caplog.text  # …and failed softly
    job = Job.objects.get()
    assert job.ref == "hotfix"
    command = ChatCommand.objects.get()
    assert (command.job, reply_of(command).status) == (job, "pending")
    assert slack_api.calls == []  # no Slack call happened in the request
    # Later (the sweeper's or a retried task's turn), the reply goes out.
    expect_post_message(slack_api)
    assert tasks.outbox_send(str(reply_of(command).pk)) == "sent"
    assert len(slack_calls(slack_api, "chat.postMessage")) == 1


def test_the_sweeper_resends_replies_whose_task_was_lost(
    client, slack_install, slack_trigger, dead_broker, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    post_slack_event(client, mention_event("deploy"))
    OutboxMessage.objects.update(updated_at=timezone.now() - timedelta(minutes=1))
    sent = []
    monkeypatch.setattr(tasks, "enqueue_now", lambda task, *args: sent.append((task.name, args)) or True)
    assert tasks.outbox_sweep() == 1
    assert sent == [("integrations.tasks.outbox_send", (str(reply_of(ChatCommand.objects.get()).pk),))]


def test_org_b_installation_cannot_be_used_for_org_a_team(client, org_b, slack_trigger):
    # A workspace linked to org B routes into org B only, even if org A has triggers for its id.
    InstallationFactory(org=org_b, external_id=TEAM)
    text = post_slash_command(client, "deploy").json()["text"]
    assert "No trigger for `deploy`" in text
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("not json", "application/json"),
        ("[1, 2]", "application/json"),
        ("payload=%7Bbad", "application/x-www-form-urlencoded"),
        ('{"type": "event_callback", "event": "x", "team_id": "T0123"}', "application/json"),
        ("\xff\xfe", "application/json"),
    ],
    ids=["not-json", "a-list", "bad-payload", "event-not-an-object", "not-utf8"],
)
def test_signed_but_malformed_bodies_are_400_not_500(client, slack_install, body, content_type):
    from .conftest import slack_headers

    response = client.post("/integrations/slack/events", data=body, content_type=content_type, **slack_headers(body))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert not ChatCommand.objects.exists()


def test_unsigned_malformed_bodies_are_401(client):
    response = client.post(
        "/integrations/slack/events",
        data="not json",
        content_type="application/json",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=str(int(time.time())),
        HTTP_X_SLACK_SIGNATURE="v0=00",
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"


def test_the_chat_command_of_a_job_is_found_by_its_id(client, slack_install, slack_trigger):
    from integrations.selectors import chat_command_for_job

    post_slack_event(client, mention_event("deploy"))
    job = Job.objects.get()
    command = chat_command_for_job(job_id=job.pk)
    assert (command.channel_id, command.thread_ts, command.installation) == (
        CHANNEL,
        "1355517523.000005",
        slack_install,
    )


# --- the reply follows the job ---------------------------------------------------------------------------


def test_a_mention_started_jobs_reply_is_edited_in_place_to_its_result(
    client, slack_api, slack_install, slack_trigger, django_capture_on_commit_callbacks
):
    from integrations.models import MessageKind, OutboxMessage
    from orgs.actors import Actor
    from triggers import services as job_services

    expect_post_message(slack_api, ts="1700000000.000200")
    with django_capture_on_commit_callbacks(execute=True):
        post_slack_event(client, mention_event("deploy"))
    job = Job.objects.get()
    reply = OutboxMessage.objects.get(job=job, kind=MessageKind.CHAT_REPLY)
    # The reply the chat side posted is the message notifications keep up to date.
    assert (reply.provider_message_id, reply.channel, reply.installation_id) == (
        "1700000000.000200",
        CHANNEL,
        slack_install.pk,
    )
    with django_capture_on_commit_callbacks(execute=True):
        job_services.job_cancel(job=job, actor=Actor.system())
    updates = [call for call in slack_calls(slack_api, "chat.update") if call["ts"] == "1700000000.000200"]
    assert updates and f"[CANCELLED] Job #{job.short_id}" in updates[-1]["text"]
    # One reply in the thread (edited, never re-posted); a failure is also posted to the channel.
    posts = slack_calls(slack_api, "chat.postMessage")
    assert [p.get("thread_ts") for p in posts].count("1355517523.000005") == 1
