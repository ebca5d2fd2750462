"""Chat as a console: who may run from chat (linked members by default, `anyone_in_channel` by
opt-in, never someone from outside the workspace), and the console words (help, status, lock,
unlock, rollback, cancel, approve), each acting as the linked user with their role, through the
environments' own services and rules; every refusal private."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from integrations.models import ChatCommand
from orgs.models import AuditEvent
from tests.factories import JobFactory, MembershipFactory
from triggers.models import ChatRunPolicy, Environment, Job, JobStatus

from .conftest import (
    DISCORD_USER,
    MENTION_USER,
    deplite_interaction,
    link_chat_user,
    link_path,
    make_slack_trigger,
    mention_event,
    post_interaction,
    post_slack_event,
    post_slash_command,
)

pytestmark = pytest.mark.django_db
_ids = itertools.count(1)


@pytest.fixture
def chat(slack_api):
    return Client()


@pytest.fixture
def production(org_a):
    return Environment.objects.create(org=org_a, name="production")


@pytest.fixture
def members_trigger(org_a, production):
    return make_slack_trigger(org_a, environment=production)


def say(chat, text: str, *, user="U2147483697", extra=None) -> str:
    """The slash command's private (ephemeral) answer."""
    answer = post_slash_command(chat, text, trigger_id=f"trig-{next(_ids)}", user=user, extra=extra).json()
    assert answer["response_type"] == "ephemeral"
    return answer["text"]


# --- who may run ---------------------------------------------------------------------------------------


def test_the_default_policy_is_members_only(members_trigger):
    assert members_trigger.chat_run_policy == ChatRunPolicy.MEMBERS


def test_an_unlinked_user_gets_a_private_login_link_and_no_job(chat, slack_install, members_trigger):
    text = say(chat, "deploy")
    assert "Only linked members of Acme may run this" in text and link_path(text)
    assert not Job.objects.exists()


def test_a_linked_member_runs_as_themself_audited_via_slack(chat, slack_install, members_trigger, member):
    link_chat_user(member, org=slack_install.org)
    text = say(chat, "deploy ref=main")
    job = Job.objects.get()
    assert f"#{job.short_id}" in text
    assert (job.requested_by, job.actor_label, job.actor_kind) == (member, "member@acme.test", "user")
    created = AuditEvent.objects.get(action="job.created")
    assert created.actor_label == "member@acme.test" and created.data["via"] == "Slack"


def test_anyone_in_channel_lets_an_unlinked_user_run(chat, slack_install, members_trigger):
    members_trigger.chat_run_policy = ChatRunPolicy.ANYONE_IN_CHANNEL
    members_trigger.save()
    say(chat, "deploy")
    job = Job.objects.get()
    assert job.requested_by is None and "alice" in job.actor_label


@pytest.mark.parametrize("policy", [ChatRunPolicy.MEMBERS, ChatRunPolicy.ANYONE_IN_CHANNEL])
def test_a_user_from_another_workspace_never_runs(chat, slack_api, slack_install, members_trigger, member, policy):
    members_trigger.chat_run_policy = policy
    members_trigger.save()
    # Even linked: a Slack Connect guest of another company in a shared channel.
    link_chat_user(member, org=slack_install.org, chat_user_id=MENTION_USER)
    event = mention_event("deploy")
    event["event"]["user_team"] = "T0OTHERCO"
    assert post_slack_event(chat, event).status_code == 200
    text = say(chat, "deploy", user=MENTION_USER, extra={"user_team": "T0OTHERCO"})
    assert "Only people of this Slack workspace" in text
    assert not Job.objects.exists()
    assert ChatCommand.objects.count() == 2


def test_a_locked_environment_refuses_a_chat_run_privately(chat, slack_install, members_trigger, member, owner):
    link_chat_user(member, org=slack_install.org)
    Environment.objects.filter(pk=members_trigger.environment_id).update(
        locked_by=owner, locked_by_label=owner.email, lock_reason="freeze", locked_at=timezone.now()
    )
    text = say(chat, "deploy")
    assert "locked" in text and "freeze" in text
    assert not Job.objects.exists()


def test_a_ref_the_environment_does_not_allow_is_refused_privately(chat, slack_install, members_trigger, member):
    link_chat_user(member, org=slack_install.org)
    Environment.objects.filter(pk=members_trigger.environment_id).update(allowed_refs=["main", "release/*"])
    text = say(chat, "deploy ref=feature/x")
    assert "feature/x" in text
    assert not Job.objects.exists()


def test_discord_unlinked_gets_an_ephemeral_link_and_linked_runs(discord_api, discord_install, discord_trigger, member):
    discord_trigger.chat_run_policy = ChatRunPolicy.MEMBERS
    discord_trigger.save()
    refused = post_interaction(Client(), deplite_interaction("deploy", interaction_id="2000000000000000001")).json()
    assert refused["data"]["flags"] == 64 and link_path(refused["data"]["content"])
    assert not Job.objects.exists()
    link_chat_user(
        member, org=discord_install.org, provider="discord", team=discord_install.external_id, chat_user_id=DISCORD_USER
    )
    ran = post_interaction(Client(), deplite_interaction("deploy", interaction_id="2000000000000000002")).json()
    assert ran == {"type": 5}
    assert Job.objects.get().requested_by == member


# --- the console words -----------------------------------------------------------------------------------


def test_help_lists_this_channels_keywords_with_their_environment(chat, slack_install, members_trigger):
    text = say(chat, "help")
    assert "`deploy`" in text and "production" in text and "`lock" in text and "`approve" in text


def test_an_unknown_word_answers_help_and_the_closest_keyword(chat, slack_install, members_trigger, member):
    link_chat_user(member, org=slack_install.org)
    text = say(chat, "deplyo")
    assert "Did you mean `deploy`?" in text and "Commands:" in text
    assert "Did you mean `status`?" in say(chat, "stauts")
    assert not Job.objects.exists()


def test_console_words_need_a_linked_user(chat, slack_install, members_trigger):
    text = say(chat, "lock production")
    assert "Only linked members" in text and link_path(text)
    assert not Environment.objects.get(name="production").locked_at


def test_lock_status_and_unlock(chat, slack_install, members_trigger, member, admin_user):
    link_chat_user(member, org=slack_install.org)
    link_chat_user(admin_user, org=slack_install.org, chat_user_id="U0ADMIN")
    assert "Locked production: release freeze" in say(chat, "lock production release freeze")
    environment = Environment.objects.get(name="production")
    assert (environment.locked_by, environment.lock_reason) == (member, "release freeze")
    assert AuditEvent.objects.get(action="environment.locked").data["via"] == "Slack"
    status = say(chat, "status production")
    assert "production" in status and "member@acme.test" in status and "release freeze" in status
    # Another member may not unlock it; an admin may.
    other = MembershipFactory(org=slack_install.org, role="member", user__email="other@acme.test").user
    link_chat_user(other, org=slack_install.org, chat_user_id="U0OTHER")
    assert "Only member@acme.test or an owner or admin may unlock production" in say(
        chat, "unlock production", user="U0OTHER"
    )
    assert "Unlocked production" in say(chat, "unlock production", user="U0ADMIN")
    assert Environment.objects.get(name="production").locked_at is None


def test_an_unknown_environment_suggests_the_closest(chat, slack_install, members_trigger, member):
    link_chat_user(member, org=slack_install.org)
    assert "Did you mean `production`?" in say(chat, "lock prodution")


def test_cancel_by_short_id_and_never_another_orgs_job(chat, slack_install, members_trigger, member, org_b):
    link_chat_user(member, org=slack_install.org)
    mine = JobFactory(org=slack_install.org, trigger=members_trigger, status=JobStatus.QUEUED)
    theirs = JobFactory(org=org_b, status=JobStatus.QUEUED)
    assert f"Cancelled #{mine.short_id}" in say(chat, f"cancel #{mine.short_id}")
    assert Job.objects.get(pk=mine.pk).status == JobStatus.CANCELLED
    assert "No job" in say(chat, f"cancel #{theirs.short_id}")
    assert Job.objects.get(pk=theirs.pk).status == JobStatus.QUEUED


def test_approve_needs_an_approver(chat, slack_install, members_trigger, member, admin_user):
    Environment.objects.filter(pk=members_trigger.environment_id).update(required_approvals=1)
    link_chat_user(member, org=slack_install.org)
    link_chat_user(admin_user, org=slack_install.org, chat_user_id="U0ADMIN")
    say(chat, "deploy")
    job = Job.objects.get()
    assert job.status == JobStatus.PENDING_APPROVAL
    refused = say(chat, f"approve #{job.short_id}")
    assert "Only owners and admins of Acme may approve" in refused
    assert f"Approved #{job.short_id}" in say(chat, f"approve #{job.short_id}", user="U0ADMIN")
    assert Job.objects.get().status in (JobStatus.QUEUED, JobStatus.WAITING)
    assert AuditEvent.objects.get(action="job.approved").data["via"] == "Slack"


def test_rollback_deploys_the_previous_success_again(chat, slack_install, members_trigger, member):
    link_chat_user(member, org=slack_install.org)
    now = timezone.now()
    for ref, minutes in (("v1", 10), ("v2", 5)):
        JobFactory(
            org=slack_install.org,
            trigger=members_trigger,
            environment=members_trigger.environment,
            environment_name="production",
            status=JobStatus.SUCCEEDED,
            ref=ref,
            finished_at=now - timedelta(minutes=minutes),
        )
    text = say(chat, "rollback production")
    job = Job.objects.exclude(status=JobStatus.SUCCEEDED).get()
    assert f"#{job.short_id}" in text and job.ref == "v1" and job.rollback_of.ref == "v2"
    assert job.requested_by == member


def test_chat_run_policy_is_an_api_field_with_a_safe_default(api, admin_user):
    body = {
        "name": "deploy-prod",
        "workflow": "deploy",
        "type": "slack",
        "chatTeamId": "T0123",
        "chatChannelId": "C0123",
        "chatKeyword": "deploy",
    }
    api.as_user(admin_user)
    created = api.post("/api/orgs/acme/triggers", body, format="json").json()
    assert created["chatRunPolicy"] == "members"
    changed = api.patch(
        f"/api/orgs/acme/triggers/{created['id']}", {"chatRunPolicy": "anyone_in_channel"}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["chatRunPolicy"] == "anyone_in_channel"
    bad = api.patch(f"/api/orgs/acme/triggers/{created['id']}", {"chatRunPolicy": "everyone"}, format="json")
    assert bad.status_code == 400 and "chatRunPolicy" in bad.json()["error"]["details"]["fields"]


def test_discord_console_words_as_a_linked_member(discord_api, discord_install, discord_trigger, member, production):
    link_chat_user(
        member, org=discord_install.org, provider="discord", team=discord_install.external_id, chat_user_id=DISCORD_USER
    )

    def say_discord(keyword: str, args: str = "") -> dict:
        interaction = deplite_interaction(keyword, args, interaction_id=f"40000000000000000{next(_ids):02d}")
        return post_interaction(Client(), interaction).json()["data"]

    assert "`deploy`" in say_discord("help")["content"]
    locked = say_discord("lock", "production release freeze")
    assert "Locked production: release freeze" in locked["content"] and "flags" not in locked  # said in the channel
    assert Environment.objects.get(name="production").lock_reason == "release freeze"
    assert "release freeze" in say_discord("status", "production")["content"]
    assert "Unlocked production" in say_discord("unlock", "production")["content"]
    wrong = say_discord("stauts")
    assert wrong["flags"] == 64 and "Did you mean `status`?" in wrong["content"]
    assert not Job.objects.exists()
