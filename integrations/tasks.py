"""Celery tasks for chat: post the reply to a chat command, and the sweeper that re-sends
replies whose task was lost (broker down when the command came in, worker killed).

Each takes an id, re-reads the row and claims it with a conditional update, so a reply is
posted once even if the task runs twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db.models import F
from django.utils import timezone

from deplite.background import enqueue_now, send_after_commit

from .discord import transport as discord
from .models import ChatCommand, CommandKind, ReplyState
from .signals import chat_reply_posted
from .slack import transport as slack
from .transport import TransportError

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# A claim older than this is a worker that died mid-call: the reply goes back to pending.
CLAIM_LEASE = timedelta(minutes=5)
# A pending reply older than this had its task lost; younger ones may still be in the queue.
SWEEP_AFTER = timedelta(seconds=30)
# Slack response_urls and Discord interaction tokens expire (30 and 15 minutes): past this
# a reply is not worth sending.
GIVE_UP_AFTER = timedelta(minutes=14)


class ReplyRetry(Exception):
    pass


@shared_task(
    bind=True,
    autoretry_for=(ReplyRetry,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=MAX_ATTEMPTS,
    ignore_result=True,
)
def chat_reply_send(self, command_id: str) -> str:
    """Post the reply of one chat command (thread reply, channel message or the Discord
    follow-up) and record the message id the notifications edit later."""
    now = timezone.now()
    claimed = ChatCommand.objects.filter(pk=command_id, reply_state=ReplyState.PENDING).update(
        reply_state=ReplyState.SENDING, reply_claimed_at=now, reply_attempts=F("reply_attempts") + 1
    )
    if not claimed:
        return "not pending"
    command = ChatCommand.objects.select_related("installation").get(pk=command_id)
    try:
        message_id = _post(command)
    except TransportError as exc:
        retry = not exc.permanent and command.reply_attempts < MAX_ATTEMPTS and now - command.created_at < GIVE_UP_AFTER
        ChatCommand.objects.filter(pk=command.pk, reply_state=ReplyState.SENDING).update(
            reply_state=ReplyState.PENDING if retry else ReplyState.FAILED, reply_error=exc.code
        )
        logger.warning("Chat reply %s failed (%s)%s", command.pk, exc.message, "; retrying" if retry else "")
        if retry and exc.retry_after:  # the provider said how long to wait (429)
            raise self.retry(exc=ReplyRetry(exc.message), countdown=exc.retry_after)
        if retry:
            raise ReplyRetry(exc.message)
        return "failed"
    sent = ChatCommand.objects.filter(pk=command.pk, reply_state=ReplyState.SENDING).update(
        reply_state=ReplyState.SENT, reply_message_id=message_id, reply_error="", replied_at=timezone.now()
    )
    if sent and command.job_id is not None and command.installation_id is not None:
        # The job's progress and result edit this very message (notifications listens).
        send_after_commit(
            chat_reply_posted,
            sender=ChatCommand,
            command_id=command.pk,
            job_id=command.job_id,
            org_id=command.org_id,
            installation_id=command.installation_id,
            provider=command.provider,
            channel_id=command.channel_id,
            thread_ts=command.thread_ts,
            interaction_token=command.interaction_token,
            message_id=message_id,
        )
    return "sent"


def _post(command: ChatCommand) -> str:
    if command.kind == CommandKind.DISCORD_SLASH:
        return discord.edit_original(
            interaction_token=command.interaction_token,
            body={"content": command.reply_text, "allowed_mentions": {"parse": []}},
        )
    installation = command.installation
    if installation is None or not installation.bot_token:
        raise TransportError("not_connected", "the Slack workspace is no longer linked", permanent=True)
    # A mention is answered in its thread; a slash command's job gets a channel message.
    thread = command.thread_ts if command.kind == CommandKind.SLACK_MENTION else ""
    return slack.post_message(
        token=installation.bot_token,
        channel=command.channel_id,
        body={"text": command.reply_text},
        outbox_id=str(command.pk),
        thread_ts=thread,
    )


@shared_task(ignore_result=True)
def chat_replies_sweep() -> int:
    """Beat: re-send pending replies whose task never ran, free claims of dead workers."""
    now = timezone.now()
    ChatCommand.objects.filter(reply_state=ReplyState.SENDING, reply_claimed_at__lt=now - CLAIM_LEASE).update(
        reply_state=ReplyState.PENDING
    )
    stale = ChatCommand.objects.filter(reply_state=ReplyState.PENDING, created_at__lt=now - GIVE_UP_AFTER)
    stale.update(reply_state=ReplyState.FAILED, reply_error="not sent in time")
    ids = list(
        ChatCommand.objects.filter(
            reply_state=ReplyState.PENDING, created_at__lt=now - SWEEP_AFTER, created_at__gte=now - GIVE_UP_AFTER
        ).values_list("id", flat=True)[:500]
    )
    for command_id in ids:
        enqueue_now(chat_reply_send, str(command_id))
    return len(ids)
