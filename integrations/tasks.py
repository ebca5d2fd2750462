"""Celery tasks of the outbox: deliver one message (paced per channel, retried), and the sweeper;
and the purge of chat login links past their age.

Tasks take ids and re-read their row; the claim (a conditional update with a lease) makes
running one twice harmless.
"""

from __future__ import annotations

import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from deplite import metrics
from deplite.background import enqueue_now

from . import identities, outbox, pace
from .models import MessageStatus, OutboxMessage

# Below this, waiting for the channel's slot is not worth a countdown.
PACE_THRESHOLD_SECONDS = 0.05
SCHEDULE_SLACK = timedelta(seconds=0.5)


@shared_task(bind=True, ignore_result=True)
def outbox_send(self, message_id: str, slotted: bool = False) -> str:
    """Deliver one outbox message.

    Every attempt first takes the channel's next send slot (`slotted`: this task is the one
    scheduled for the slot already taken), retries included, so a burst of retries after a
    provider's 500s keeps the channel's pace. A transient error schedules the next attempt
    itself (backoff with jitter, or the provider's Retry-After, which holds the channel's
    other messages back too); the row carries that time for the sweeper.
    """
    eager = bool(self.request.is_eager)
    target = (
        OutboxMessage.objects.filter(pk=message_id, status__in=[MessageStatus.PENDING, MessageStatus.SENDING])
        .values("provider", "channel", "status", "next_attempt_at", "lease_until")
        .first()
    )
    if target is None:
        return outbox.Outcome.NOT_OWED
    if not slotted and _scheduled_or_held(target):
        # A copy (a revision, the sweeper): the task already scheduled for this row sends its
        # latest content; taking a slot here would only push the channel's schedule back.
        return outbox.Outcome.NOT_OWED
    if not slotted and not eager:
        wait = pace.reserve_slot(provider=target["provider"], channel=target["channel"])
        if wait > PACE_THRESHOLD_SECONDS:
            outbox.message_pace(message_id=message_id, wait=wait)
            outbox_send.apply_async(args=[message_id], kwargs={"slotted": True}, countdown=wait)
            return "paced"
    attempt = outbox.message_attempt(message_id=message_id)
    metrics.NOTIFICATION_DELIVERIES.labels(provider=target["provider"], outcome=attempt.outcome).inc()
    if attempt.outcome != outbox.Outcome.RETRY or eager:
        # In-process (embedded default): never sleep in a request; the sweeper retries when due.
        return attempt.outcome
    if attempt.retry_after is not None:
        # The provider's wait applies to the whole channel: its schedule moves back, and this
        # retry takes the first slot after it.
        wait = pace.reserve_slot(provider=target["provider"], channel=target["channel"], not_before=attempt.retry_after)
        countdown = max(wait, attempt.retry_after) + random.uniform(0, 0.25)  # noqa: S311 (jitter)  # nosec B311
        outbox.message_pace(message_id=message_id, wait=countdown)
        outbox_send.apply_async(args=[message_id], kwargs={"slotted": True}, countdown=countdown)
    else:
        # Backoff, then a slot like any other attempt.
        outbox_send.apply_async(args=[message_id], countdown=attempt.retry_in)
    return attempt.outcome


def _scheduled_or_held(target: dict) -> bool:
    now = timezone.now()
    if target["status"] == MessageStatus.SENDING:
        return target["lease_until"] is not None and target["lease_until"] >= now
    # Some slack: a countdown may fire a little before the time stamped on its row.
    return target["next_attempt_at"] is not None and target["next_attempt_at"] > now + SCHEDULE_SLACK


@shared_task(ignore_result=True)
def outbox_sweep() -> int:
    """Beat: re-enqueue messages whose task was lost (broker down, worker killed)."""
    grace = timedelta(seconds=settings.DEPLITE_NOTIFY_SWEEP_GRACE_SECONDS)
    ids = outbox.messages_owed(grace=grace)
    for message_id in ids:
        enqueue_now(outbox_send, message_id)
    return len(ids)


@shared_task(ignore_result=True)
def chat_link_tokens_purge() -> int:
    """Beat: delete the `/deplite login` links past their age, used or not (bounded per run)."""
    return identities.link_tokens_purge()
