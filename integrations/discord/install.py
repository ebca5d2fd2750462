"""The Discord OAuth install: bot + applications.commands with a code grant and state."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings

from deplite.links import absolute_url

from .transport import BOT_PERMISSIONS

AUTHORIZE_URL = "https://discord.com/oauth2/authorize"
SCOPES = ["bot", "applications.commands"]


def redirect_uri() -> str:
    return absolute_url("discord-oauth-callback")


def authorize_url(*, state: str) -> str:
    query = {
        "client_id": settings.DISCORD_CLIENT_ID,
        "scope": " ".join(SCOPES),
        "permissions": BOT_PERMISSIONS,
        "response_type": "code",
        "redirect_uri": redirect_uri(),
        "state": state,
    }
    return f"{AUTHORIZE_URL}?{urlencode(query)}"
