"""The Slack OAuth install: the authorize URL with a single-use state, and the callback."""

from __future__ import annotations

from django.conf import settings
from slack_sdk.oauth import AuthorizeUrlGenerator

from deplite.links import absolute_url

# Mentions, the slash command, and posting replies/results (also in public channels the
# bot was not invited to).
BOT_SCOPES = ["app_mentions:read", "chat:write", "chat:write.public", "commands"]


def redirect_uri() -> str:
    return absolute_url("slack-oauth-callback")


def authorize_url(*, state: str) -> str:
    return AuthorizeUrlGenerator(
        client_id=settings.SLACK_CLIENT_ID, scopes=BOT_SCOPES, redirect_uri=redirect_uri()
    ).generate(state)
