"""Cards and their buttons, in Slack (Block Kit actions through the Interactivity URL) and Discord
(message components through the interactions endpoint): posted when a job waits for approval,
acted on as the linked clicker with their rights at click time, edited in place, and every
refusal (unlinked, wrong role, other org, external user, double click, stale signature) private."""

from __future__ import annotations

import itertools
import json
import time
from urllib.parse import urlencode

import pytest
from django.test import Client

from integrations import outbox
from integrations.models import MessageKind, OutboxMessage
from orgs.models import AuditEvent
from tests.factories import InstallationFactory, JobFactory, MembershipFactory, TriggerFactory
from triggers.models import ChatProvider, Environment, Job, JobApproval, JobStatus, TriggerType

from .conftest import (
    CHANNEL,
    DISCORD_CHANNEL,
    DISCORD_USER,
    GUILD,
    MENTION_USER,
    TEAM,
    link_chat_user,
    link_path,
    make_slack_trigger,
    mention_event,
    post_interaction,
    post_slack_event,
    slack_headers,
)

pytestmark = pytest.mark.django_db
APPROVALS = "C0APPROVE"
_ids = itertools.count(1)


@pytest.fixture
def production(org_a):
    return Environment.objects.create(
        org=org_a,
        name="production",
        required_approvals=1,
        approval_provider="slack",
        approval_team_id=TEAM,
        approval_channel_id=APPROVALS,
    )


@pytest.fixture
def trigger(org_a, production):
    return make_slack_trigger(org_a, environment=production, repository_url="https://github.com/acme/web")


@pytest.fixture
def people(slack_install, member, admin_user):
    """The requester (member, through a mention) and an approver (admin, U0ADMIN)."""
    link_chat_user(member, org=slack_install.org, chat_user_id=MENTION_USER, name="max")
    link_chat_user(admin_user, org=slack_install.org, chat_user_id="U0ADMIN", name="ana")


def _deliver_all() -> None:
    """What a worker does with every owed message (without the channel's pace, which tests elsewhere cover)."""
    for row in OutboxMessage.objects.filter(status="pending"):
        outbox.message_attempt(message_id=row.pk)


@pytest.fixture
def pending(slack_api, trigger, people, django_capture_on_commit_callbacks) -> Job:
    """A job started by a mention, waiting for approval, its cards delivered."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    with django_capture_on_commit_callbacks(execute=True):
        post_slack_event(Client(), mention_event(f"deploy ref={sha} VERSION=<!channel>"))
    _deliver_all()
    job = Job.objects.get()
    assert job.status == JobStatus.PENDING_APPROVAL
    return job


def post_action(action: str, value: str, *, user="U0ADMIN", name="ana", user_team=TEAM, team=TEAM, **sign):
    payload = {
        "type": "block_actions",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": name, "team_id": user_team},
        "api_app_id": "A123456",
        "token": "deprecated",
        "trigger_id": f"trig-{next(_ids)}",
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": APPROVALS, "name": "approvals"},
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": APPROVALS},
        "response_url": "https://hooks.slack.com/actions/T0123/1/2",
        "actions": [
            {"type": "button", "action_id": f"deplite:{action}", "block_id": "b", "value": value, "action_ts": "1.2"}
        ],
    }
    body = urlencode({"payload": json.dumps(payload)})
    return Client().post(
        "/integrations/slack/interactions",
        data=body,
        content_type="application/x-www-form-urlencoded",
        **slack_headers(body, **sign),
    )


def _card(slack_api, channel=APPROVALS) -> dict:
    (message,) = slack_api.in_channel(channel)
    return message


def _buttons(blocks) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _click(*args, **kwargs):
    """A click, then what it owes delivered (the worker's part)."""
    response = post_action(*args, **kwargs)
    assert response.status_code == 200
    _deliver_all()
    return response


# --- the card ---------------------------------------------------------------------------------------------


def test_a_job_waiting_for_approval_posts_its_card_to_the_approval_channel_and_the_thread(slack_api, pending):
    card = _card(slack_api)
    assert f"#{pending.short_id}" in card["text"] and "member@acme.test" in card["text"]
    # The SHA is shortened and linked; the param that would ping the channel is escaped.
    assert "<https://github.com/acme/web/commit/0123456789abcdef0123456789abcdef01234567|0123456>" in card["text"]
    assert "&lt;!channel&gt;" in card["text"] and "<!channel>" not in card["text"]
    assert _buttons(card["blocks"]) == ["deplite:approve", "deplite:reject", "deplite:cancel", "deplite:view"]
    in_thread = [m for m in slack_api.in_channel(CHANNEL) if m["blocks"]]
    assert len(in_thread) == 1 and in_thread[0]["thread_ts"] == "1355517523.000005"


def test_approve_acts_once_and_edits_the_card_in_place(slack_api, pending):
    _click("approve", str(pending.pk))
    _click("approve", str(pending.pk))  # a double click
    job = Job.objects.get(pk=pending.pk)
    assert job.status in (JobStatus.QUEUED, JobStatus.WAITING)
    assert JobApproval.objects.filter(job=job).count() == 1
    assert AuditEvent.objects.filter(action="job.approved").count() == 1
    card = _card(slack_api)
    assert "Approved by @ana" in card["text"] and card["edits"]
    assert _buttons(card["blocks"]) == ["deplite:cancel", "deplite:view"]  # only what still applies
    assert slack_api.ephemerals == []


def test_a_clicker_who_may_not_approve_is_told_privately(slack_api, pending, slack_install):
    other = MembershipFactory(org=slack_install.org, role="member", user__email="other@acme.test").user
    link_chat_user(other, org=slack_install.org, chat_user_id="U0OTHER")
    _click("approve", str(pending.pk), user="U0OTHER", name="other")
    (told,) = slack_api.ephemerals
    assert told["user"] == "U0OTHER" and "Only owners and admins of Acme may approve" in told["text"]
    assert Job.objects.get(pk=pending.pk).status == JobStatus.PENDING_APPROVAL


def test_the_requester_may_not_approve_their_own_deploy(slack_api, pending, slack_install):
    Environment.objects.update(approver_role="member")
    _click("approve", str(pending.pk), user=MENTION_USER, name="max")
    assert "another approver" in slack_api.ephemerals[0]["text"]
    assert Job.objects.get(pk=pending.pk).status == JobStatus.PENDING_APPROVAL


def test_an_unlinked_clicker_gets_a_login_link(slack_api, pending):
    _click("approve", str(pending.pk), user="U0STRANGER", name="stranger")
    (told,) = slack_api.ephemerals
    assert link_path(told["text"].replace("&amp;", "&"))
    assert Job.objects.get(pk=pending.pk).status == JobStatus.PENDING_APPROVAL


def test_an_external_user_can_never_click(slack_api, pending):
    _click("approve", str(pending.pk), user_team="T0OTHERCO")
    assert "Only people of this Slack workspace" in slack_api.ephemerals[0]["text"]
    assert Job.objects.get(pk=pending.pk).status == JobStatus.PENDING_APPROVAL


def test_another_orgs_job_id_is_refused(slack_api, pending, org_b):
    theirs = JobFactory(org=org_b, status=JobStatus.QUEUED)
    _click("cancel", str(theirs.pk))
    assert "not in this organization" in slack_api.ephemerals[0]["text"]
    assert Job.objects.get(pk=theirs.pk).status == JobStatus.QUEUED
    _click("cancel", "not-a-uuid")
    assert "not in this organization" in slack_api.ephemerals[1]["text"]


@pytest.mark.parametrize(
    "sign",
    [lambda: {"secret": "wrong"}, lambda: {"ts": int(time.time()) - 310}, lambda: {"ts": "soon"}],
    ids=["bad-signature", "stale", "malformed"],
)
def test_unsigned_or_stale_clicks_are_401_and_do_nothing(slack_api, pending, sign):
    assert post_action("approve", str(pending.pk), **sign()).status_code == 401
    assert Job.objects.get(pk=pending.pk).status == JobStatus.PENDING_APPROVAL


def test_reject_opens_a_modal_and_its_reason_ends_the_job(slack_api, pending):
    slack_api.answer("views.open", {"ok": True})
    _click("reject", str(pending.pk))
    (opened,) = slack_api.requests("views.open")
    view = json.loads(opened["view"]) if isinstance(opened["view"], str) else opened["view"]
    assert view["callback_id"] == "deplite:reject"
    assert Job.objects.get(pk=pending.pk).status == JobStatus.PENDING_APPROVAL  # nothing yet
    submission = {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "acme"},
        "user": {"id": "U0ADMIN", "username": "ana", "team_id": TEAM},
        "api_app_id": "A123456",
        "token": "deprecated",
        "trigger_id": "trig-sub",
        "enterprise": None,
        "view": {
            **view,
            "id": "V1",
            "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": "not on a Friday"}}}},
        },
    }
    body = urlencode({"payload": json.dumps(submission)})
    response = Client().post(
        "/integrations/slack/interactions",
        data=body,
        content_type="application/x-www-form-urlencoded",
        **slack_headers(body),
    )
    assert response.status_code == 200
    _deliver_all()
    job = Job.objects.get(pk=pending.pk)
    assert job.status == JobStatus.CANCELLED and "not on a Friday" in job.error
    card = _card(slack_api)
    assert "Rejected: not on a Friday by @ana" in card["text"]
    assert _buttons(card["blocks"]) == ["deplite:rerun", "deplite:view"]


def test_cancel_then_rerun_once_for_a_double_click(slack_api, pending):
    _click("cancel", str(pending.pk))
    assert Job.objects.get(pk=pending.pk).status == JobStatus.CANCELLED
    _click("rerun", str(pending.pk))
    _click("rerun", str(pending.pk))
    assert slack_api.ephemerals == []
    again = Job.objects.exclude(pk=pending.pk).get()
    assert again.rerun_of_id == pending.pk and again.status == JobStatus.PENDING_APPROVAL
    assert "Re-run as" in _card(slack_api)["text"]


def test_a_click_is_answered_and_acted_on_with_the_broker_down(slack_api, pending, dead_broker):
    started = time.monotonic()
    response = post_action("approve", str(pending.pk))
    print(f"\nclick answered in {time.monotonic() - started:.3f}s with the broker down")  # noqa: T201 (measured)
    assert response.status_code == 200
    assert Job.objects.get(pk=pending.pk).status in (JobStatus.QUEUED, JobStatus.WAITING)
    # The card's edit is owed, for the sweeper or a retried task.
    assert OutboxMessage.objects.filter(kind=MessageKind.APPROVAL, status="pending").exists()


# --- Discord --------------------------------------------------------------------------------------------


@pytest.fixture
def discord_pending(discord_api, discord_install, org_a, member, admin_user) -> Job:
    environment = Environment.objects.create(
        org=org_a,
        name="staging",
        required_approvals=1,
        approval_provider="discord",
        approval_team_id=GUILD,
        approval_channel_id=DISCORD_CHANNEL,
    )
    trigger = TriggerFactory(
        org=org_a,
        type=TriggerType.DISCORD,
        chat_provider="discord",
        chat_team_id=GUILD,
        chat_channel_id=DISCORD_CHANNEL,
        chat_keyword="ship",
        environment=environment,
    )
    link_chat_user(member, org=org_a, provider="discord", team=GUILD, chat_user_id="42", name="max")
    link_chat_user(admin_user, org=org_a, provider="discord", team=GUILD, chat_user_id=DISCORD_USER, name="Bob")
    from orgs.actors import Actor
    from triggers.services import trigger_run

    result = trigger_run(trigger=trigger, actor=Actor.for_user(member), source="api", ref="main", params={})
    from integrations.cards import approval_requests_post

    approval_requests_post(job_id=result.job_id)
    _deliver_all()
    return Job.objects.get(pk=result.job_id)


def component(custom_id: str, *, guild=GUILD, user=DISCORD_USER, kind=3, data=None):
    return {
        "id": f"30000000000000000{next(_ids):02d}",
        "application_id": "11111111111111111",
        "type": kind,
        "token": "component-token",
        "version": 1,
        "guild_id": guild,
        "channel_id": DISCORD_CHANNEL,
        "member": {"user": {"id": user, "username": "bob", "global_name": "Bob"}},
        "message": {"id": "1000", "content": "card"},
        "data": data or {"custom_id": custom_id, "component_type": 2},
    }


def test_discord_card_is_posted_with_components(discord_api, discord_pending):
    (card,) = discord_api.in_channel(DISCORD_CHANNEL)
    ids = [c.get("custom_id") for row in card["components"] for c in row["components"]]
    assert ids == [f"deplite:{a}:{discord_pending.pk}" for a in ("approve", "reject", "cancel")] + [None]


def test_discord_approve_edits_the_card_in_the_response(discord_api, discord_pending):
    answer = post_interaction(Client(), component(f"deplite:approve:{discord_pending.pk}")).json()
    assert answer["type"] == 7 and "Approved by @Bob" in answer["data"]["content"]
    labels = [c["label"] for row in answer["data"]["components"] for c in row["components"]]
    assert labels == ["Cancel", "View job"]
    assert Job.objects.get(pk=discord_pending.pk).status in (JobStatus.QUEUED, JobStatus.WAITING)


def test_discord_reject_asks_a_reason_in_a_modal(discord_api, discord_pending):
    modal = post_interaction(Client(), component(f"deplite:reject:{discord_pending.pk}")).json()
    assert modal["type"] == 9 and modal["data"]["custom_id"] == f"deplite:reject:{discord_pending.pk}"
    data = {
        "custom_id": f"deplite:reject:{discord_pending.pk}",
        "components": [{"type": 1, "components": [{"type": 4, "custom_id": "reason", "value": "bad timing"}]}],
    }
    answer = post_interaction(Client(), component("", kind=5, data=data)).json()
    assert answer["type"] == 7 and "Rejected: bad timing" in answer["data"]["content"]
    assert Job.objects.get(pk=discord_pending.pk).status == JobStatus.CANCELLED


def test_discord_cancel_asks_to_confirm(discord_api, discord_pending):
    confirm = post_interaction(Client(), component(f"deplite:cancel:{discord_pending.pk}")).json()
    assert confirm["data"]["flags"] == 64
    (button,) = confirm["data"]["components"][0]["components"]
    assert Job.objects.get(pk=discord_pending.pk).status == JobStatus.PENDING_APPROVAL
    done = post_interaction(Client(), component(button["custom_id"])).json()
    assert done["type"] == 7 and "Cancelled" in done["data"]["content"]
    assert Job.objects.get(pk=discord_pending.pk).status == JobStatus.CANCELLED


def test_discord_click_by_a_non_approver_or_from_another_guild_is_refused(discord_api, discord_pending, org_b):
    refused = post_interaction(Client(), component(f"deplite:approve:{discord_pending.pk}", user="42")).json()
    assert refused["data"]["flags"] == 64 and "may approve" in refused["data"]["content"]
    InstallationFactory(org=org_b, provider=ChatProvider.DISCORD, external_id="999", bot_token="")
    other = post_interaction(Client(), component(f"deplite:approve:{discord_pending.pk}", guild="999")).json()
    assert "not in this organization" in other["data"]["content"]
    assert Job.objects.get(pk=discord_pending.pk).status == JobStatus.PENDING_APPROVAL


def test_discord_autocomplete_offers_keywords_and_environments(discord_api, discord_pending):
    keyword = {"name": "deplite", "options": [{"type": 3, "name": "keyword", "value": "s", "focused": True}]}
    choices = post_interaction(Client(), component("", kind=4, data=keyword)).json()
    assert choices["type"] == 8
    names = [c["name"] for c in choices["data"]["choices"]]
    assert names[:2] == ["ship", "status"]
    args = {
        "name": "deplite",
        "options": [
            {"type": 3, "name": "keyword", "value": "lock"},
            {"type": 3, "name": "args", "value": "sta", "focused": True},
        ],
    }
    choices = post_interaction(Client(), component("", kind=4, data=args)).json()
    assert [c["name"] for c in choices["data"]["choices"]] == ["staging"]


def test_a_finished_job_leaves_its_card_with_re_run_only(slack_api, pending, django_capture_on_commit_callbacks):
    from django.utils import timezone

    from triggers.services import job_finish

    _click("approve", str(pending.pk))
    Job.objects.filter(pk=pending.pk).update(status=JobStatus.RUNNING, started_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        job_finish(job=Job.objects.get(pk=pending.pk), status="succeeded", exit_code=0, error=None)
    _deliver_all()
    card = _card(slack_api)
    assert card["text"].startswith("*Succeeded*") and "Approved by admin@acme.test" in card["text"]
    assert _buttons(card["blocks"]) == ["deplite:rerun", "deplite:view"]


def test_the_approve_command_edits_the_cards_too(slack_api, pending):
    from .conftest import post_slash_command

    answer = post_slash_command(Client(), f"approve #{pending.short_id}", user="U0ADMIN", trigger_id="t-cmd").json()
    assert f"Approved #{pending.short_id}" in answer["text"]
    _deliver_all()
    assert _buttons(_card(slack_api)["blocks"]) == ["deplite:cancel", "deplite:view"]


def test_the_approval_channel_is_set_through_the_environments_api(api, admin_user, org_a):
    Environment.objects.create(org=org_a, name="qa")
    api.as_user(admin_user)
    url = "/api/orgs/acme/environments/qa"
    body = {"approvalProvider": "slack", "approvalTeamId": TEAM, "approvalChannelId": APPROVALS}
    response = api.patch(url, body, format="json")
    assert response.status_code == 200, response.json()
    assert {k: response.json()[k] for k in body} == body
    half = api.patch(url, {"approvalChannelId": ""}, format="json")
    assert half.status_code == 400 and "approvalProvider" in half.json()["error"]["details"]["fields"]
    cleared = api.patch(url, {"approvalProvider": "", "approvalTeamId": "", "approvalChannelId": ""}, format="json")
    assert cleared.status_code == 200 and cleared.json()["approvalProvider"] == ""
