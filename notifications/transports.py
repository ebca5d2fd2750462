"""Provider calls for notifications: Slack through slack_sdk's WebClient, Discord through requests.

Every failure becomes a `DeliveryError` that says whether trying again can help
(`permanent`) and how long the provider asked us to wait (`retry_after`, from a 429).
The clients never retry by themselves: retries are the delivery task's, counted on the row.
"""

from __future__ import annotations

import logging
import urllib.error
from datetime import datetime

import requests
from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

logger = logging.getLogger(__name__)

HTTP_TIMEOUT = 10

# Slack errors that will not go away by trying again (docs of chat.postMessage / chat.update).
SLACK_PERMANENT = frozenset(
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
        "msg_too_long",
        "invalid_blocks",
        "invalid_attachments",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "team_access_not_granted",
        "ekm_access_denied",
    }
)
SLACK_TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})

# Marks our messages in Slack so a retry after a lost answer can find the one already posted.
SLACK_METADATA_EVENT = "deplite_notification"


class DeliveryError(Exception):
    def __init__(self, code: str, message: str = "", *, permanent: bool, retry_after: float | None = None):
        self.code = code[:64]
        self.message = message or code
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(f"{code}: {message}" if message else code)


# --- Slack ----------------------------------------------------------------------------------------


def _slack(token: str) -> WebClient:
    # retry_handlers=[]: slack_sdk would otherwise retry a connection error itself, uncounted.
    return WebClient(token=token, base_url=settings.SLACK_API_URL, timeout=HTTP_TIMEOUT, retry_handlers=[])


def _slack_error(exc: Exception) -> DeliveryError:
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = response.status_code
        code = (response.data or {}).get("error", "") if isinstance(response.data, dict) else ""
        if status == 429 or code == "ratelimited":
            retry_after = _seconds(response.headers.get("Retry-After") or response.headers.get("retry-after"))
            return DeliveryError(
                "rate_limited", "Slack asked us to slow down", permanent=False, retry_after=retry_after
            )
        if code in SLACK_PERMANENT:
            return DeliveryError(code, f"Slack refused the message ({code})", permanent=True)
        if status >= 500 or code in SLACK_TRANSIENT:
            return DeliveryError(code or f"http_{status}", f"Slack answered {status} {code}".strip(), permanent=False)
        # Any other `ok: false` is about this request and repeats identically.
        return DeliveryError(code or f"http_{status}", f"Slack refused the message ({code or status})", permanent=True)
    return DeliveryError("connection_error", f"Slack could not be reached: {type(exc).__name__}", permanent=False)


_SLACK_NETWORK_ERRORS = (SlackClientError, urllib.error.URLError, OSError, TimeoutError, ValueError)


def slack_post(*, token: str, channel: str, body: dict, delivery_id: str, thread_ts: str = "") -> str:
    """chat.postMessage; returns the message ts. The delivery id rides along as message metadata."""
    kwargs = dict(body)
    if thread_ts:
        kwargs["thread_ts"] = thread_ts
    try:
        response = _slack(token).chat_postMessage(
            channel=channel,
            metadata={"event_type": SLACK_METADATA_EVENT, "event_payload": {"delivery_id": delivery_id}},
            unfurl_links=False,
            **kwargs,
        )
    except _SLACK_NETWORK_ERRORS as exc:
        raise _slack_error(exc) from None
    return str(response.get("ts") or "")


def slack_update(*, token: str, channel: str, ts: str, body: dict) -> str:
    try:
        response = _slack(token).chat_update(channel=channel, ts=ts, **body)
    except _SLACK_NETWORK_ERRORS as exc:
        raise _slack_error(exc) from None
    return str(response.get("ts") or ts)


def slack_find_posted(*, token: str, channel: str, delivery_id: str, since: datetime, thread_ts: str = "") -> str:
    """The ts of a message this delivery already posted (found by its metadata), or "".

    Asked only after an attempt whose outcome is unknown (a worker died mid-call). If the
    lookup itself fails, the error propagates: guessing "not posted" could post twice.
    """
    oldest = f"{since.timestamp() - 60:.6f}"
    try:
        client = _slack(token)
        if thread_ts:
            response = client.conversations_replies(
                channel=channel, ts=thread_ts, oldest=oldest, include_all_metadata=True, limit=200
            )
        else:
            response = client.conversations_history(
                channel=channel, oldest=oldest, include_all_metadata=True, limit=200
            )
    except _SLACK_NETWORK_ERRORS as exc:
        raise _slack_error(exc) from None
    for message in response.get("messages") or []:
        metadata = message.get("metadata") or {}
        if (
            metadata.get("event_type") == SLACK_METADATA_EVENT
            and (metadata.get("event_payload") or {}).get("delivery_id") == delivery_id
        ):
            return str(message.get("ts") or "")
    return ""


# --- Discord --------------------------------------------------------------------------------------


def _discord_url(path: str) -> str:
    return settings.DISCORD_API_URL.rstrip("/") + path


def _discord_headers() -> dict:
    if not settings.DISCORD_BOT_TOKEN:
        raise DeliveryError("discord_not_configured", "DISCORD_BOT_TOKEN is not set on this server", permanent=True)
    return {"Authorization": f"Bot {settings.DISCORD_BOT_TOKEN}", "User-Agent": "Deplite (notifications)"}


def _discord_call(method: str, path: str, *, json: dict | None = None, auth: bool = True) -> dict:
    try:
        response = requests.request(
            method, _discord_url(path), json=json, headers=_discord_headers() if auth else {}, timeout=HTTP_TIMEOUT
        )
    except requests.RequestException as exc:
        raise DeliveryError(
            "connection_error", f"Discord could not be reached: {type(exc).__name__}", permanent=False
        ) from None
    status = response.status_code
    if status < 300:
        return response.json() if response.content else {}
    try:
        data = response.json()
    except ValueError:
        data = {}
    if status == 429:
        retry_after = _seconds(data.get("retry_after")) or _seconds(response.headers.get("Retry-After"))
        raise DeliveryError("rate_limited", "Discord asked us to slow down", permanent=False, retry_after=retry_after)
    message = str(data.get("message") or response.reason or "")[:500]
    if status in (401, 403, 404):
        code = {401: "invalid_auth", 403: "missing_access", 404: "unknown_channel"}[status]
        raise DeliveryError(code, f"Discord refused the message ({status} {message})".strip(), permanent=True)
    if status >= 500:
        raise DeliveryError(f"http_{status}", f"Discord answered {status}", permanent=False)
    raise DeliveryError(f"http_{status}", f"Discord refused the message ({status} {message})", permanent=True)


def discord_channel_guild(*, channel: str) -> str:
    """The guild a channel belongs to: a target must name a channel of the installation's own guild."""
    return str(_discord_call("GET", f"/channels/{channel}").get("guild_id") or "")


def discord_post(*, channel: str, body: dict, nonce: str) -> str:
    """POST /channels/{id}/messages with an enforced nonce: a repeat within minutes returns the first message."""
    data = _discord_call("POST", f"/channels/{channel}/messages", json={**body, "nonce": nonce, "enforce_nonce": True})
    return str(data.get("id") or "")


def discord_edit(*, channel: str, message_id: str, body: dict) -> str:
    data = _discord_call("PATCH", f"/channels/{channel}/messages/{message_id}", json=body)
    return str(data.get("id") or message_id)


def discord_edit_original(*, interaction_token: str, body: dict) -> str:
    """Edit the original response of an interaction (valid 15 minutes; no bot token needed)."""
    app_id = settings.DISCORD_CLIENT_ID
    if not app_id:
        raise DeliveryError("discord_not_configured", "DISCORD_CLIENT_ID is not set on this server", permanent=True)
    data = _discord_call("PATCH", f"/webhooks/{app_id}/{interaction_token}/messages/@original", json=body, auth=False)
    return str(data.get("id") or "")


def _seconds(value) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None
