"""Slack's buttons and the reject modal, as bolt listeners (registered in `events._build`).

A click is acted on in the request (`integrations.buttons`), so its answer does not wait on the
broker; the card edits and any private explanation are outbox messages sent after commit. Only
Reject calls Slack in the request: views.open must use the click's trigger_id within 3 seconds.
"""

from __future__ import annotations

import json
import logging

from triggers.models import ChatProvider

from .. import buttons, outbox
from ..cards import ACTION_PREFIX
from ..models import Installation, MessageKind
from ..transport import TransportError
from . import text as slack_text
from . import transport

logger = logging.getLogger(__name__)

REJECT_CALLBACK = ACTION_PREFIX + "reject"


def _obj(value) -> dict:
    return value if isinstance(value, dict) else {}


def _external(team_id: str, user: dict) -> bool:
    # The clicker's own team (`user.team_id`) differs from the workspace's in a Slack Connect channel.
    return bool(user.get("team_id")) and user.get("team_id") != team_id


def _tell(*, team_id: str, channel: str, user_id: str, text: str, thread_ts: str = "") -> None:
    """A private explanation to the clicker (chat.postEphemeral, through the outbox)."""
    installation = (
        Installation.objects.filter(provider=ChatProvider.SLACK, external_id=team_id).defer("bot_token").first()
    )
    if installation is None or not channel or not user_id:
        return
    outbox.message_enqueue(
        org_id=installation.org_id,
        kind=MessageKind.CHAT_PRIVATE,
        provider=ChatProvider.SLACK,
        channel=channel,
        content={"text": slack_text.escape(text), "user": user_id},
        installation=installation,
        thread_ts=thread_ts,
    )


def _reject_modal(job_id: str, channel: str) -> dict:
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "private_metadata": json.dumps({"job": job_id, "channel": channel}),
        "title": {"type": "plain_text", "text": "Reject this deploy"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Back"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why?"},
                "element": {"type": "plain_text_input", "action_id": "reason", "max_length": 500},
            }
        ],
    }


def on_action(body: dict, action: dict, ack) -> None:
    ack()
    name = str(action.get("action_id") or "").removeprefix(ACTION_PREFIX)
    if name == "view":  # a link button: Slack opens the URL, nothing to do
        return
    team_id = str(_obj(body.get("team")).get("id") or "")
    user = _obj(body.get("user"))
    channel = str(_obj(body.get("channel")).get("id") or "")
    thread_ts = str(_obj(_obj(body.get("container"))).get("thread_ts") or "")
    job_id = str(action.get("value") or "")
    if name == "reject":
        installation = Installation.objects.filter(provider=ChatProvider.SLACK, external_id=team_id).first()
        if installation is not None and installation.bot_token and not _external(team_id, user):
            try:
                transport.open_view(
                    token=installation.bot_token,
                    trigger_id=str(body.get("trigger_id") or ""),
                    view=_reject_modal(job_id, channel),
                )
                return
            except TransportError as exc:
                logger.warning("Slack views.open failed (%s): rejecting without a reason.", exc.code)
    result = buttons.button_click(
        buttons.Click(
            provider=ChatProvider.SLACK,
            team_id=team_id,
            chat_user_id=str(user.get("id") or ""),
            chat_user_name=str(user.get("username") or user.get("name") or ""),
            action=name,
            job_id=job_id,
            external=_external(team_id, user),
        )
    )
    if not result.acted:
        _tell(
            team_id=team_id, channel=channel, user_id=str(user.get("id") or ""), text=result.text, thread_ts=thread_ts
        )


def on_reject_submit(body: dict, view: dict, ack) -> None:
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        meta = {}
    meta = _obj(meta)
    values = _obj(_obj(view.get("state")).get("values"))
    reason = str(_obj(_obj(values.get("reason")).get("reason")).get("value") or "")[:500]
    team_id = str(_obj(body.get("team")).get("id") or "")
    user = _obj(body.get("user"))
    result = buttons.button_click(
        buttons.Click(
            provider=ChatProvider.SLACK,
            team_id=team_id,
            chat_user_id=str(user.get("id") or ""),
            chat_user_name=str(user.get("username") or user.get("name") or ""),
            action="reject",
            job_id=str(meta.get("job") or ""),
            reason=reason,
            external=_external(team_id, user),
        )
    )
    if result.acted:
        ack()
    else:
        # Shown under the reason field: the modal stays open with the explanation.
        ack(response_action="errors", errors={"reason": result.text[:150]})
