"""Slack Web API calls, through slack_sdk's WebClient pointed at `SLACK_API_URL`.

Only tasks and management commands call these; a request handler never does (Slack wants
its answer within 3 seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from ..transport import TransportError

TIMEOUT_SECONDS = 10
# Errors a retry cannot fix: the token or the channel is gone, or the bot is not in it.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
        "invalid_code",
        "code_already_used",
        "bad_client_secret",
        "invalid_client_id",
        "bad_redirect_uri",
        "msg_too_long",
        "no_text",
    }
)


def client(token: str | None = None) -> WebClient:
    base = settings.SLACK_API_URL
    return WebClient(token=token, base_url=base if base.endswith("/") else base + "/", timeout=TIMEOUT_SECONDS)


def _call(fn, **kwargs) -> dict:
    try:
        return fn(**kwargs).data
    except SlackApiError as exc:
        error = exc.response.get("error", "") if exc.response is not None else ""
        status = exc.response.status_code if exc.response is not None else 0
        if status == 429 or error == "ratelimited":
            retry_after = float(exc.response.headers.get("Retry-After", 1) or 1)
            raise TransportError("rate limited", permanent=False, retry_after=retry_after) from None
        raise TransportError(error or f"HTTP {status}", permanent=error in PERMANENT_ERRORS) from None
    except (SlackClientError, OSError) as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}", permanent=False) from None


@dataclass(frozen=True)
class SlackInstall:
    team_id: str
    team_name: str
    bot_user_id: str
    bot_token: str
    scopes: list[str]


def oauth_exchange(*, code: str, redirect_uri: str) -> SlackInstall:
    """`oauth.v2.access`: the code from the callback → the workspace's bot token."""
    data = _call(
        client().oauth_v2_access,
        client_id=settings.SLACK_CLIENT_ID,
        client_secret=settings.SLACK_CLIENT_SECRET,
        code=code,
        redirect_uri=redirect_uri,
    )
    team = data.get("team") or {}
    if not team.get("id") or not data.get("access_token"):
        raise TransportError("oauth.v2.access answered without a team or a bot token", permanent=True)
    return SlackInstall(
        team_id=team["id"],
        team_name=team.get("name") or "",
        bot_user_id=data.get("bot_user_id") or "",
        bot_token=data["access_token"],
        scopes=[s for s in (data.get("scope") or "").split(",") if s],
    )


def auth_test(*, token: str) -> dict:
    return _call(client(token).auth_test)


def post_message(*, token: str, channel: str, text: str, thread_ts: str = "") -> str:
    """Post a message; returns its ts (the id `chat.update` edits)."""
    kwargs = {"channel": channel, "text": text, "unfurl_links": False}
    if thread_ts:
        kwargs["thread_ts"] = thread_ts
    data = _call(client(token).chat_postMessage, **kwargs)
    return data.get("ts") or ""
