"""Slack events and slash commands, through slack-bolt (signature v0 on the raw body with
the 5-minute window, url_verification, ssl_check), in the request thread
(`process_before_response`) so the command's rows are committed before Slack gets its
answer. No listener calls Slack: replies go through the outbox (`integrations.outbox`)."""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from slack_bolt import App
from slack_bolt.adapter.django import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult

from triggers.models import ChatProvider

from .. import services
from ..models import CommandKind, Installation
from . import actions, transport

logger = logging.getLogger(__name__)


def _authorize(enterprise_id, team_id, user_id, **_kwargs) -> AuthorizeResult:
    # Always a result, even for a team nobody linked: bolt would otherwise answer the user
    # itself by calling the response_url inside the request. The listeners tell the user;
    # the token is not needed here (nothing calls Slack in the request).
    bot_user_id = (
        Installation.objects.filter(provider=ChatProvider.SLACK, external_id=team_id or "")
        .values_list("bot_user_id", flat=True)
        .first()
    )
    return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_user_id=bot_user_id)


def external_user(team_id: str, *payloads: dict) -> bool:
    """Whether the chat user belongs to another workspace than the installation's: in a Slack
    Connect channel, Slack names the user's own team (`user_team`, `source_team`) beside the
    channel's, and marks an external member (`is_stranger`, `user.team_id`)."""
    for payload in payloads:
        for key in ("user_team", "source_team"):
            value = payload.get(key)
            if isinstance(value, str) and value and value != team_id:
                return True
        user = payload.get("user")
        if isinstance(user, dict):
            if user.get("is_stranger") or (user.get("team_id") and user.get("team_id") != team_id):
                return True
    return False


def _on_mention(body: dict, event: dict, ack) -> None:
    ack()
    team_id = body.get("team_id") or event.get("team") or ""
    services.chat_command_receive(
        provider=ChatProvider.SLACK,
        kind=CommandKind.SLACK_MENTION,
        external_id=body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}",
        team_id=team_id,
        channel_id=event.get("channel") or "",
        user_id=event.get("user") or "",
        user_name="",
        text=event.get("text") or "",
        # Reply in the thread the mention is in, or start one under it.
        thread_ts=event.get("thread_ts") or event.get("ts") or "",
        external=external_user(team_id, event),
    )


def _on_slash_command(body: dict, ack) -> None:
    receipt = services.chat_command_receive(
        provider=ChatProvider.SLACK,
        kind=CommandKind.SLACK_SLASH,
        external_id=body.get("trigger_id") or "",
        team_id=body.get("team_id") or "",
        channel_id=body.get("channel_id") or "",
        user_id=body.get("user_id") or "",
        user_name=body.get("user_name") or "",
        text=body.get("text") or "",
        response_url=body.get("response_url") or "",
        external=external_user(body.get("team_id") or "", body),
    )
    # The slash command's own HTTP answer: seen at once by the user who typed it.
    ack(text=receipt.text or "Received.", response_type="ephemeral")


def _on_uninstalled(body: dict, ack) -> None:
    ack()
    services.installation_remove_for_team(
        provider=ChatProvider.SLACK, external_id=body.get("team_id") or "", reason="app_uninstalled"
    )


def _on_tokens_revoked(body: dict, event: dict, ack) -> None:
    ack()
    if (event.get("tokens") or {}).get("bot"):
        services.installation_remove_for_team(
            provider=ChatProvider.SLACK, external_id=body.get("team_id") or "", reason="tokens_revoked"
        )


def _ignore(ack) -> None:
    ack()


@lru_cache(maxsize=4)
def _build(signing_secret: str, api_url: str) -> SlackRequestHandler:
    app = App(
        signing_secret=signing_secret,
        authorize=_authorize,
        client=transport.client(),
        process_before_response=True,
        request_verification_enabled=True,
        url_verification_enabled=True,
        ssl_check_enabled=True,
    )
    app.event("app_mention")(_on_mention)
    app.command(re.compile(r"^/"))(_on_slash_command)
    app.action(re.compile(r"^deplite:"))(actions.on_action)
    app.view(actions.REJECT_CALLBACK)(actions.on_reject_submit)
    app.event("app_uninstalled")(_on_uninstalled)
    app.event("tokens_revoked")(_on_tokens_revoked)
    # Other subscribed events are acknowledged, or Slack would retry them.
    app.event(re.compile(r".*"))(_ignore)
    return SlackRequestHandler(app)


def bolt_handler() -> SlackRequestHandler:
    """The Django adapter around the app, built once per signing secret / API URL."""
    from django.conf import settings

    return _build(settings.SLACK_SIGNING_SECRET, settings.SLACK_API_URL)
