"""The suite's one fake Slack and Discord APIs (tests/chat_fakes.py, on loopback) that the real
slack_sdk / requests clients talk to, and inbound requests signed exactly as Slack (HMAC
v0) and Discord (Ed25519, a key pair generated for the test run) sign them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
from django.test import Client
from nacl.signing import SigningKey

from integrations.models import MessageKind, OutboxMessage
from orgs.models import Role
from tests.chat_fakes import FakeDiscord, FakeSlack
from tests.factories import InstallationFactory, MembershipFactory, TriggerFactory
from triggers.models import ChatProvider, TriggerType

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # noqa: S105 (a test value)
DISCORD_KEY = SigningKey.generate()
TEAM = "T0123"
CHANNEL = "C0123"
GUILD = "81384788765712384"
DISCORD_CHANNEL = "41771983423143937"
DISCORD_APP = "11111111111111111"


@pytest.fixture
def _fake_server(chat_api_servers):
    server = chat_api_servers("chat")
    yield server
    server.clear()


@pytest.fixture
def slack_api(_fake_server, settings) -> FakeSlack:
    """The fake Slack Web API (any bot token is accepted); SLACK_* settings point at it."""
    fake = FakeSlack(_fake_server, tokens=None)
    settings.SLACK_API_URL = fake.url
    settings.SLACK_CLIENT_ID = "1111.2222"
    settings.SLACK_CLIENT_SECRET = "slack-client-secret"  # noqa: S105
    settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
    return fake


@pytest.fixture
def discord_api(_fake_server, settings) -> FakeDiscord:
    fake = FakeDiscord(
        _fake_server, bot_token="discord-bot-token", app_id=DISCORD_APP, channel_guilds={DISCORD_CHANNEL: GUILD}
    )
    settings.DISCORD_API_URL = fake.url
    settings.DISCORD_CLIENT_ID = DISCORD_APP
    settings.DISCORD_CLIENT_SECRET = "discord-client-secret"  # noqa: S105
    settings.DISCORD_PUBLIC_KEY = DISCORD_KEY.verify_key.encode().hex()
    settings.DISCORD_BOT_TOKEN = "discord-bot-token"  # noqa: S105
    return fake


def slack_headers(body: str, *, ts: int | str | None = None, secret: str = SIGNING_SECRET, retry: int | None = None):
    ts = str(int(time.time()) if ts is None else ts)
    base = f"v0:{ts}:{body}".encode()
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    headers = {"HTTP_X_SLACK_REQUEST_TIMESTAMP": ts, "HTTP_X_SLACK_SIGNATURE": signature}
    if retry is not None:
        headers.update({"HTTP_X_SLACK_RETRY_NUM": str(retry), "HTTP_X_SLACK_RETRY_REASON": "http_timeout"})
    return headers


def post_slack_event(client: Client, payload: dict, **sign):
    body = json.dumps(payload)
    return client.post(
        "/integrations/slack/events", data=body, content_type="application/json", **slack_headers(body, **sign)
    )


def post_slash_command(
    client: Client,
    text: str,
    *,
    team=TEAM,
    channel=CHANNEL,
    trigger_id="13345224609.738474920",
    user="U2147483697",
    extra: dict | None = None,
    **sign,
):
    body = urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": team,
            "team_domain": "acme",
            "channel_id": channel,
            "channel_name": "deploys",
            "user_id": user,
            "user_name": "alice",
            "command": "/deplite",
            "text": text,
            "api_app_id": "A123456",
            "response_url": "https://hooks.slack.com/commands/1234/5678",
            "trigger_id": trigger_id,
            **(extra or {}),
        }
    )
    return client.post(
        "/integrations/slack/events",
        data=body,
        content_type="application/x-www-form-urlencoded",
        **slack_headers(body, **sign),
    )


def mention_event(text: str, *, team=TEAM, channel=CHANNEL, event_id="Ev0PV52K21", ts="1355517523.000005"):
    return {
        "token": "deprecated",
        "team_id": team,
        "api_app_id": "A123456",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": {
            "type": "app_mention",
            "user": "U061F7AUR",
            "text": f"<@U0BOT> {text}",
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
        },
    }


def discord_headers(body: bytes, *, key: SigningKey = DISCORD_KEY, ts: str | None = None):
    ts = ts or str(int(time.time()))
    signature = key.sign(ts.encode() + body).signature.hex()
    return {"HTTP_X_SIGNATURE_ED25519": signature, "HTTP_X_SIGNATURE_TIMESTAMP": ts}


def post_interaction(client: Client, payload: dict, **sign):
    body = json.dumps(payload).encode()
    return client.post(
        "/integrations/discord/interactions",
        data=body,
        content_type="application/json",
        **discord_headers(body, **sign),
    )


def deplite_interaction(keyword: str, args: str = "", *, guild=GUILD, interaction_id="1000000000000000001"):
    options = [{"type": 3, "name": "keyword", "value": keyword}]
    if args:
        options.append({"type": 3, "name": "args", "value": args})
    return {
        "id": interaction_id,
        "application_id": DISCORD_APP,
        "type": 2,
        "token": "interaction-token-abc",
        "version": 1,
        "guild_id": guild,
        "channel_id": DISCORD_CHANNEL,
        "member": {"user": {"id": "53908232506183680", "username": "bob", "global_name": "Bob"}},
        "data": {"id": "99", "name": "deplite", "type": 1, "options": options},
    }


@pytest.fixture
def slack_install(org_a):
    return InstallationFactory(org=org_a, provider=ChatProvider.SLACK, external_id=TEAM, name="Acme Slack")


@pytest.fixture
def discord_install(org_a):
    return InstallationFactory(
        org=org_a, provider=ChatProvider.DISCORD, external_id=GUILD, name="Acme Discord", bot_token=""
    )


def make_slack_trigger(org, **fields):
    """`deploy-prod`, run by the keyword `deploy` in the Slack channel CHANNEL of the team TEAM."""
    return TriggerFactory(
        org=org,
        name="deploy-prod",
        type=TriggerType.SLACK,
        chat_provider="slack",
        chat_team_id=TEAM,
        chat_channel_id=CHANNEL,
        chat_keyword="deploy",
        **fields,
    )


@pytest.fixture
def slack_trigger(org_a):
    # Today's behaviour, which these tests are about; `members` (the default) is tested in test_console.
    return make_slack_trigger(org_a, default_ref="main", chat_run_policy="anyone_in_channel")


@pytest.fixture
def discord_trigger(org_a):
    return TriggerFactory(
        org=org_a,
        name="deploy-discord",
        type=TriggerType.DISCORD,
        chat_provider="discord",
        chat_team_id=GUILD,
        chat_channel_id=DISCORD_CHANNEL,
        chat_keyword="deploy",
        chat_run_policy="anyone_in_channel",
    )


@pytest.fixture
def admin_of_b(org_b):
    return MembershipFactory(org=org_b, role=Role.ADMIN, user__email="admin@bravo.test").user


def reply_of(command) -> OutboxMessage:
    """The outbox message that answers a chat command (its reply, edited as its job moves)."""
    return OutboxMessage.objects.get(command=command, kind=MessageKind.CHAT_REPLY)


SLASH_USER = "U2147483697"  # the user of post_slash_command
MENTION_USER = "U061F7AUR"  # the user of mention_event
DISCORD_USER = "53908232506183680"  # the member of deplite_interaction


def link_chat_user(user, *, org, provider=ChatProvider.SLACK, team=TEAM, chat_user_id=SLASH_USER, name="alice"):
    """A chat identity as `/deplite login` leaves it (the link flow itself is tested in test_identity)."""
    from integrations.models import ChatIdentity

    return ChatIdentity.objects.create(
        org=org, provider=provider, team_id=team, chat_user_id=chat_user_id, chat_user_name=name, user=user
    )


def link_path(text: str) -> str:
    """The path of the one-time link an answer carries."""
    import re

    match = re.search(r"https?://[^/\s]+(/integrations/chat/link/[^\s>|)]+)", text)
    assert match, text
    return match.group(1)
