"""How one outbox row reaches its provider, through that provider's one client: which call
(post, edit, fill in a Discord interaction's response), whether the target may be used at
all, and after an attempt whose outcome is unknown, looking for the earlier post first."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from triggers.models import ChatProvider, NotifyProvider

from .discord import transport as discord
from .models import MessageKind, OutboxMessage
from .slack import transport as slack
from .transport import TransportError
from .webhook import delivery as webhook

logger = logging.getLogger(__name__)

NOT_CONNECTED = "not_connected"
# A Discord interaction token is valid 15 minutes; past this, edit the message with the bot token.
INTERACTION_TOKEN_TTL = timedelta(minutes=14)


def check_target(row: OutboxMessage) -> None:
    """Only an installation of the row's own org is ever used; a Discord channel must be in its guild.
    A webhook needs its trigger (the secret) and an endpoint not disabled."""
    if row.provider == NotifyProvider.WEBHOOK:
        webhook.check_target(row)
        return
    installation = row.installation
    if installation is None or installation.org_id != row.org_id or installation.provider != row.provider:
        raise TransportError(NOT_CONNECTED, "No installation of this organization for this workspace", permanent=True)
    if row.provider == ChatProvider.SLACK and not installation.bot_token:
        raise TransportError(NOT_CONNECTED, "The Slack workspace has no bot token", permanent=True)
    if row.provider == ChatProvider.DISCORD and row.kind != MessageKind.CHAT_REPLY:
        if discord.channel_guild(channel=row.channel) != installation.external_id:
            raise TransportError(
                NOT_CONNECTED, "The channel is not in this organization's Discord server", permanent=True
            )


def send(row: OutboxMessage) -> str:
    """Post (or edit) the message; returns the provider's message id."""
    if row.provider == NotifyProvider.WEBHOOK:
        return webhook.send(row)
    body = row.content
    if row.kind == MessageKind.CHAT_PRIVATE:
        return _send_private(row, body)
    if row.provider == ChatProvider.SLACK:
        return _send_slack(row, body)
    if row.kind == MessageKind.CHAT_REPLY:
        fresh = row.interaction_at is not None and timezone.now() - row.interaction_at < INTERACTION_TOKEN_TTL
        if row.interaction_token and fresh:
            return discord.edit_original(interaction_token=row.interaction_token, body=body) or row.provider_message_id
        if row.provider_message_id:
            return discord.edit_message(channel=row.channel, message_id=row.provider_message_id, body=body)
    # Discord's enforced nonce makes a repeat within minutes return the first message.
    return discord.post_message(channel=row.channel, body=body, nonce=row.pk.hex[:25])


def _send_private(row: OutboxMessage, body: dict) -> str:
    """An answer for one chat user's eyes. Slack keeps no ephemeral message to look for, so an
    attempt whose outcome is unknown may show it twice: harmless for a private answer."""
    if row.provider != ChatProvider.SLACK:
        # Discord answers privately in the interaction's own response, never through the outbox.
        raise TransportError(
            "private_unsupported", "Discord private answers go in the interaction response", permanent=True
        )
    fields = {k: v for k, v in body.items() if k != "user"}
    return (
        slack.post_ephemeral(
            token=row.installation.bot_token,
            channel=row.channel,
            user=body.get("user", ""),
            body=fields,
            thread_ts=row.thread_ts,
        )
        or "ephemeral"
    )


def _send_slack(row: OutboxMessage, body: dict) -> str:
    token = row.installation.bot_token
    if row.provider_message_id:
        return slack.update_message(token=token, channel=row.channel, ts=row.provider_message_id, body=body)
    if row.uncertain_since is not None:
        try:
            found = slack.find_posted(
                token=token,
                channel=row.channel,
                outbox_id=str(row.pk),
                since=row.uncertain_since,
                thread_ts=row.thread_ts,
            )
        except TransportError as exc:
            if not exc.permanent:
                raise
            # Without channels:history we cannot tell; posting blindly could post twice.
            raise TransportError(
                "outcome_unknown",
                f"A worker stopped mid-call and Slack could not be asked whether the message "
                f"was posted ({exc.code}); retry to post it anyway",
                permanent=True,
            ) from None
        if found:
            logger.info("Outbox message %s was posted before its worker stopped; not posting again.", row.pk)
            if row.kind == MessageKind.CHAT_REPLY:
                return slack.update_message(token=token, channel=row.channel, ts=found, body=body)
            return found
    return slack.post_message(
        token=token, channel=row.channel, body=body, outbox_id=str(row.pk), thread_ts=row.thread_ts
    )
