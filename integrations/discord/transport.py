"""Discord HTTP API calls with `requests`, against `DISCORD_API_URL`: the one Discord client
(OAuth, command registration, outbox).

Every failure becomes a `TransportError`; nothing retries here (the outbox does, counted
and paced). Only tasks, the OAuth callback and management commands call these; the
interactions endpoint never does (Discord wants its answer within 3 seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from django.conf import settings

from ..transport import TransportError, seconds

TIMEOUT_SECONDS = 10
USER_AGENT = "DiscordBot (https://github.com/deplite, 1.0) Deplite"

# The one command Deplite registers: `/deplite <keyword> [args]`.
COMMAND = {
    "name": "deplite",
    "type": 1,
    "description": "Run a Deplite trigger of this channel, or help, status, lock, approve…",
    "options": [
        {
            "type": 3,
            "name": "keyword",
            "description": "A trigger's keyword (deploy…) or help, status, lock, unlock, rollback, cancel, approve, login",
            "required": True,
            "autocomplete": True,
        },
        {
            "type": 3,
            "name": "args",
            "description": "ref=<ref> KEY=value …, an environment, or a #shortId",
            "required": False,
            "autocomplete": True,
        },
    ],
}
# View Channels + Send Messages: enough for the bot to post results.
BOT_PERMISSIONS = "3072"
# Refusals a retry cannot change, by HTTP status.
_PERMANENT_CODES = {401: "invalid_auth", 403: "missing_access", 404: "unknown_channel"}


def _url(path: str) -> str:
    return settings.DISCORD_API_URL.rstrip("/") + path


def _bot_headers() -> dict:
    if not settings.DISCORD_BOT_TOKEN:
        raise TransportError("discord_not_configured", "DISCORD_BOT_TOKEN is not set on this server", permanent=True)
    return {"Authorization": f"Bot {settings.DISCORD_BOT_TOKEN}"}


def _request(method: str, path: str, *, bot: bool = False, **kwargs) -> dict | list:
    headers = {"User-Agent": USER_AGENT, **(_bot_headers() if bot else {})}
    try:
        response = requests.request(method, _url(path), headers=headers, timeout=TIMEOUT_SECONDS, **kwargs)
    except requests.RequestException as exc:
        raise TransportError(
            "connection_error", f"Discord could not be reached: {type(exc).__name__}", permanent=False
        ) from None
    status = response.status_code
    if status < 300:
        if status == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise TransportError("bad_answer", "Discord's answer is not JSON", permanent=False) from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    if status == 429:
        retry_after = seconds(data.get("retry_after")) or seconds(response.headers.get("Retry-After"))
        raise TransportError(
            "rate_limited", "Discord asked us to slow down", permanent=False, retry_after=retry_after or 1.0
        )
    if status >= 500:
        raise TransportError(f"http_{status}", f"Discord answered {status}", permanent=False)
    detail = str(data.get("message") or data.get("error") or response.reason or "")[:500]
    code = _PERMANENT_CODES.get(status, f"http_{status}")
    raise TransportError(code, f"Discord refused the request ({status} {detail})".strip(), permanent=True)


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
        raise TransportError("no_guild", "the token answer names no guild (was the bot scope granted?)", permanent=True)
    return DiscordInstall(
        guild_id=str(guild["id"]),
        guild_name=guild.get("name") or "",
        scopes=[s for s in (data.get("scope") or "").split() if s],
    )


def register_commands(*, guild_id: str | None = None) -> list[dict]:
    """Create or overwrite the `/deplite` command, globally or for one guild."""
    app_id = settings.DISCORD_CLIENT_ID
    path = f"/applications/{app_id}/guilds/{guild_id}/commands" if guild_id else f"/applications/{app_id}/commands"
    data = _request("PUT", path, bot=True, json=[COMMAND])
    return data if isinstance(data, list) else []


def channel_guild(*, channel: str) -> str:
    """The guild a channel belongs to: a target must name a channel of the installation's own guild."""
    return str(_request("GET", f"/channels/{channel}", bot=True).get("guild_id") or "")


def post_message(*, channel: str, body: dict, nonce: str) -> str:
    """POST /channels/{id}/messages with an enforced nonce: a repeat within minutes returns the first message."""
    data = _request(
        "POST", f"/channels/{channel}/messages", bot=True, json={**body, "nonce": nonce, "enforce_nonce": True}
    )
    return str(data.get("id") or "")


def edit_message(*, channel: str, message_id: str, body: dict) -> str:
    data = _request("PATCH", f"/channels/{channel}/messages/{message_id}", bot=True, json=body)
    return str(data.get("id") or message_id)


def edit_original(*, interaction_token: str, body: dict) -> str:
    """Fill in or edit an interaction's original response (valid 15 minutes; no bot token needed)."""
    app_id = settings.DISCORD_CLIENT_ID
    if not app_id:
        raise TransportError("discord_not_configured", "DISCORD_CLIENT_ID is not set on this server", permanent=True)
    data = _request("PATCH", f"/webhooks/{app_id}/{interaction_token}/messages/@original", json=body)
    return str(data.get("id") or "")
