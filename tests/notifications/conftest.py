"""Fixtures for notifications: fake Slack and Discord APIs, installations, and a way to finish jobs
through the real services (so `job_finished` fires after commit, as in production)."""

from __future__ import annotations

import pytest

from orgs.actors import Actor
from tests.chat_fakes import FakeDiscord, FakeSlack
from tests.factories import InstallationFactory, TriggerFactory
from triggers import services as trigger_services
from triggers.models import Job, JobSource, JobStatus

SLACK_TOKEN = "xoxb-acme-token"
OTHER_SLACK_TOKEN = "xoxb-bravo-token"
DISCORD_BOT = "discord-bot-token"
DISCORD_APP = "4242"
GUILD_A, GUILD_B = "900001", "900002"
CHANNEL_A, CHANNEL_B = "100001", "100002"  # Discord channels of guild A and guild B


@pytest.fixture
def fake_slack(settings, chat_api_servers):
    server = chat_api_servers("slack")
    fake = FakeSlack(server, tokens={SLACK_TOKEN, OTHER_SLACK_TOKEN})
    settings.SLACK_API_URL = fake.url
    yield fake
    server.clear()


@pytest.fixture
def fake_discord(settings, chat_api_servers):
    server = chat_api_servers("discord")
    fake = FakeDiscord(
        server, bot_token=DISCORD_BOT, app_id=DISCORD_APP, channel_guilds={CHANNEL_A: GUILD_A, CHANNEL_B: GUILD_B}
    )
    settings.DISCORD_API_URL = fake.url
    settings.DISCORD_BOT_TOKEN = DISCORD_BOT
    settings.DISCORD_CLIENT_ID = DISCORD_APP
    yield fake
    server.clear()


@pytest.fixture
def slack_a(org_a):
    """Org A's Slack workspace T0123."""
    return InstallationFactory(org=org_a, provider="slack", external_id="T0123", bot_token=SLACK_TOKEN)


@pytest.fixture
def slack_b(org_b):
    """Org B's Slack workspace T0999: never usable by org A."""
    return InstallationFactory(org=org_b, provider="slack", external_id="T0999", bot_token=OTHER_SLACK_TOKEN)


@pytest.fixture
def discord_a(org_a):
    return InstallationFactory(org=org_a, provider="discord", external_id=GUILD_A, bot_token="")


def slack_trigger(org, *, notify_on="always", team="T0123", channel="C0456", name="deploy-prod"):
    """The docs' notify JSON: {notifyProvider: slack, notifyTeamId, notifyChannelId, notifyOn}."""
    return TriggerFactory(
        org=org,
        name=name,
        notify_provider="slack",
        notify_team_id=team,
        notify_channel_id=channel,
        notify_on=notify_on,
    )


def run(trigger, *, ref: str | None = "main", source: str = JobSource.API) -> Job:
    result = trigger_services.trigger_run(
        trigger=trigger, actor=Actor.system("test"), source=source, ref=ref, params={}
    )
    return Job.objects.get(pk=result.job_id)


def start(job: Job, *, agent_id=None) -> Job:
    """As if an agent claimed it (the claim is tested elsewhere)."""
    import uuid

    from django.utils import timezone

    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING,
        agent_id=agent_id or uuid.uuid4(),
        claimed_at=timezone.now(),
        started_at=timezone.now(),
    )
    job.refresh_from_db()
    return job


def finish(job: Job, status: str, *, exit_code: int | None = 0, error: str | None = None) -> Job:
    """Finish through the real services: the agent's report, a user's cancel, or the reaper's timeout."""
    if status == "cancelled" and job.status == JobStatus.QUEUED:
        return trigger_services.job_cancel(job=job, actor=Actor.system("test"))
    if status == "timed_out":
        start(job)
        trigger_services.job_fail(
            job_id=job.pk, error="timeout exceeded: the job ran longer than 60 minutes", from_statuses=["running"]
        )
        job.refresh_from_db()
        return job
    if job.status == JobStatus.QUEUED:
        job = start(job)
    return trigger_services.job_finish(job=job, status=status, exit_code=exit_code, error=error)


def open_reply(
    job: Job, *, installation, channel: str, thread_ts: str = "", interaction_token: str = "", message_id=""
):
    """A chat-started job's reply as the chat side writes it: an outbox row, here with the job's
    queued state as its first content. `message_id`: the reply is already in the channel."""
    from integrations import outbox
    from integrations.models import MessageKind, MessageStatus, OutboxMessage
    from notifications import rendering

    message = rendering.render(job)
    row = outbox.message_enqueue(
        org_id=job.org_id,
        job_id=job.pk,
        kind=MessageKind.CHAT_REPLY,
        provider=installation.provider,
        installation=installation,
        channel=channel,
        content=message.body(installation.provider),
        rank=message.rank,
        thread_ts=thread_ts,
        interaction_token=interaction_token,
    )
    if message_id:
        OutboxMessage.objects.filter(pk=row.pk).update(
            status=MessageStatus.SENT, provider_message_id=message_id, sent_rank=message.rank
        )
    return row
