"""Slack Web API calls, through slack_sdk's WebClient pointed at `SLACK_API_URL`: the one
Slack client (OAuth, slash-command app, outbox).

Every failure becomes a `TransportError`. The client never retries by itself (not even a
connection error): retries are the outbox's, counted on its row and paced per channel.
Only tasks and management commands call these; a request handler never does (Slack wants
its answer within 3 seconds).
"""

from __future__ import annotations

import urllib.error
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from ..transport import TransportError, seconds

TIMEOUT_SECONDS = 10
# Within Slack's 3 seconds for the click's answer, with room for our own work.
MODAL_TIMEOUT_SECONDS = 2
# Errors a retry cannot fix (docs of oauth.v2.access, chat.postMessage, chat.update): the token
# or the channel is gone, the bot is not in it or may not post, or this request is malformed.
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
        "no_permission",
        "missing_scope",
        "restricted_action",
        "team_access_not_granted",
        "ekm_access_denied",
        "invalid_code",
        "code_already_used",
        "bad_client_secret",
        "invalid_client_id",
        "bad_redirect_uri",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_attachments",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
    }
)
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})

# Marks Deplite's messages so a retry after a lost answer can find the one already posted.
METADATA_EVENT = "deplite_notification"

_NETWORK_ERRORS = (SlackClientError, urllib.error.URLError, OSError, TimeoutError, ValueError)


def client(token: str | None = None, *, timeout: float = TIMEOUT_SECONDS) -> WebClient:
    base = settings.SLACK_API_URL
    # retry_handlers=[]: slack_sdk would otherwise retry a connection error itself, uncounted and unpaced.
    return WebClient(
        token=token,
        base_url=base if base.endswith("/") else base + "/",
        timeout=timeout,
        retry_handlers=[],
    )


def _error(exc: Exception) -> TransportError:
    if not isinstance(exc, SlackApiError):
        return TransportError("connection_error", f"Slack could not be reached: {type(exc).__name__}", permanent=False)
    response = exc.response
    status = response.status_code
    code = (response.data or {}).get("error", "") if isinstance(response.data, dict) else ""
    if status == 429 or code == "ratelimited":
        retry_after = seconds(response.headers.get("Retry-After") or response.headers.get("retry-after"))
        return TransportError(
            "rate_limited", "Slack asked us to slow down", permanent=False, retry_after=retry_after or 1.0
        )
    if code in PERMANENT_ERRORS:
        return TransportError(code, f"Slack refused the message ({code})", permanent=True)
    if status >= 500 or code in TRANSIENT_ERRORS:
        return TransportError(code or f"http_{status}", f"Slack answered {status} {code}".strip(), permanent=False)
    # Any other `ok: false` is about this request and repeats identically.
    return TransportError(code or f"http_{status}", f"Slack refused the message ({code or status})", permanent=True)


def _call(fn, **kwargs) -> dict:
    try:
        return fn(**kwargs).data
    except _NETWORK_ERRORS as exc:
        raise _error(exc) from None


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
        raise TransportError("no_bot_token", "oauth.v2.access answered without a team or a bot token", permanent=True)
    return SlackInstall(
        team_id=team["id"],
        team_name=team.get("name") or "",
        bot_user_id=data.get("bot_user_id") or "",
        bot_token=data["access_token"],
        scopes=[s for s in (data.get("scope") or "").split(",") if s],
    )


def auth_test(*, token: str) -> dict:
    return _call(client(token).auth_test)


def post_message(*, token: str, channel: str, body: dict, outbox_id: str, thread_ts: str = "") -> str:
    """chat.postMessage; returns the message ts. The outbox row's id rides along as message metadata."""
    kwargs = dict(body)
    if thread_ts:
        kwargs["thread_ts"] = thread_ts
    data = _call(
        client(token).chat_postMessage,
        channel=channel,
        metadata={"event_type": METADATA_EVENT, "event_payload": {"delivery_id": outbox_id}},
        unfurl_links=False,
        **kwargs,
    )
    return str(data.get("ts") or "")


def post_ephemeral(*, token: str, channel: str, user: str, body: dict, thread_ts: str = "") -> str:
    """chat.postEphemeral: seen by `user` only, never stored by Slack (nothing to find or edit later)."""
    kwargs = dict(body)
    if thread_ts:
        kwargs["thread_ts"] = thread_ts
    data = _call(client(token).chat_postEphemeral, channel=channel, user=user, **kwargs)
    return str(data.get("message_ts") or "")


def open_view(*, token: str, trigger_id: str, view: dict) -> None:
    """views.open: a modal for the user who just clicked. The one call made inside a request:
    Slack's trigger_id is valid 3 seconds, so it cannot wait for a task. Bounded by its timeout."""
    _call(client(token, timeout=MODAL_TIMEOUT_SECONDS).views_open, trigger_id=trigger_id, view=view)


def update_message(*, token: str, channel: str, ts: str, body: dict) -> str:
    data = _call(client(token).chat_update, channel=channel, ts=ts, **body)
    return str(data.get("ts") or ts)


def find_posted(*, token: str, channel: str, outbox_id: str, since: datetime, thread_ts: str = "") -> str:
    """The ts of a message this outbox row already posted (found by its metadata), or "".

    Asked only after an attempt whose outcome is unknown (a worker died mid-call). If the
    lookup itself fails, the error propagates: guessing "not posted" could post twice.
    """
    oldest = f"{since.timestamp() - 60:.6f}"
    web = client(token)
    if thread_ts:
        data = _call(
            web.conversations_replies,
            channel=channel,
            ts=thread_ts,
            oldest=oldest,
            include_all_metadata=True,
            limit=200,
        )
    else:
        data = _call(web.conversations_history, channel=channel, oldest=oldest, include_all_metadata=True, limit=200)
    for message in data.get("messages") or []:
        metadata = message.get("metadata") or {}
        if (
            metadata.get("event_type") == METADATA_EVENT
            and (metadata.get("event_payload") or {}).get("delivery_id") == outbox_id
        ):
            return str(message.get("ts") or "")
    return ""
