"""Discord HTTP API calls with `requests`, against `DISCORD_API_URL`.

Only tasks, the OAuth callback and management commands call these; the interactions
endpoint never does (Discord wants its answer within 3 seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from django.conf import settings

from ..transport import TransportError

TIMEOUT_SECONDS = 10
USER_AGENT = "DiscordBot (https://github.com/deplite, 1.0) Deplite"

# The one command Deplite registers: `/deplite <keyword> [args]`.
COMMAND = {
    "name": "deplite",
    "type": 1,
    "description": "Run a Deplite trigger of this channel",
    "options": [
        {"type": 3, "name": "keyword", "description": "The trigger's keyword, e.g. deploy", "required": True},
        {"type": 3, "name": "args", "description": "ref=<ref> KEY=value …", "required": False},
    ],
}
# View Channels + Send Messages: enough for the bot to post results.
BOT_PERMISSIONS = "3072"


def _url(path: str) -> str:
    return settings.DISCORD_API_URL.rstrip("/") + path


def _request(method: str, path: str, *, bot: bool = False, **kwargs) -> dict:
    headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    if bot:
        headers["Authorization"] = f"Bot {settings.DISCORD_BOT_TOKEN}"
    try:
        response = requests.request(method, _url(path), headers=headers, timeout=TIMEOUT_SECONDS, **kwargs)
    except requests.RequestException as exc:
        raise TransportError(f"{type(exc).__name__}", permanent=False) from None
    if response.status_code == 429:
        try:
            retry_after = float(response.json().get("retry_after", 1))
        except ValueError:
            retry_after = 1.0
        raise TransportError("rate limited", permanent=False, retry_after=retry_after)
    if response.status_code >= 500:
        raise TransportError(f"HTTP {response.status_code}", permanent=False)
    if response.status_code >= 400:
        try:
            detail = response.json().get("message") or response.json().get("error") or ""
        except ValueError:
            detail = ""
        raise TransportError(f"HTTP {response.status_code} {detail}".strip()[:200], permanent=True)
    if response.status_code == 204 or not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        raise TransportError("the answer is not JSON", permanent=False) from None


@dataclass(frozen=True)
class DiscordInstall:
    guild_id: str
    guild_name: str
    scopes: list[str]


def oauth_exchange(*, code: str, redirect_uri: str) -> DiscordInstall:
    """`POST /oauth2/token`: a bot install's answer names the guild it was added to."""
    data = _request(
        "POST",
        "/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        auth=(settings.DISCORD_CLIENT_ID, settings.DISCORD_CLIENT_SECRET),
    )
    guild = data.get("guild") or {}
    if not guild.get("id"):
        raise TransportError("the token answer names no guild (was the bot scope granted?)", permanent=True)
    return DiscordInstall(
        guild_id=str(guild["id"]),
        guild_name=guild.get("name") or "",
        scopes=[s for s in (data.get("scope") or "").split() if s],
    )


def edit_original_response(*, application_id: str, interaction_token: str, content: str) -> str:
    """Fill in a deferred interaction response; returns the message id."""
    data = _request(
        "PATCH",
        f"/webhooks/{application_id}/{interaction_token}/messages/@original",
        json={"content": content, "allowed_mentions": {"parse": []}},
    )
    return str(data.get("id") or "")


def register_commands(*, guild_id: str | None = None) -> list[dict]:
    """Create or overwrite the `/deplite` command, globally or for one guild."""
    app_id = settings.DISCORD_CLIENT_ID
    path = f"/applications/{app_id}/guilds/{guild_id}/commands" if guild_id else f"/applications/{app_id}/commands"
    data = _request("PUT", path, bot=True, json=[COMMAND])
    return data if isinstance(data, list) else []
