"""The outbox: every message Deplite sends to chat is a row first, then a delivery.

Whoever owes a message (the chat side for a command's reply, `notifications` for progress
and results) writes its row with `message_enqueue` in its own transaction, and may revise
its content later with `message_revise` (an edit, only ever forward). Delivery is
`message_attempt`, called by `integrations.tasks.outbox_send`: claim the row with a lease
(a conditional update: one worker wins), send or edit through the provider's one client,
record the message id. A row whose task was lost (broker down, worker killed) is found by
the sweeper (`messages_owed`) shortly after its scheduled time.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, CharField, DateTimeField, F, IntegerField, Q, Value, When
from django.utils import timezone

from deplite.errors import Conflict
from orgs.actors import Actor
from orgs.services import audit_record
from triggers.models import NotifyProvider

from . import delivery
from .delivery import NOT_CONNECTED
from .models import Installation, MessageKind, MessageStatus, OutboxMessage
from .selectors import installation_for_org
from .transport import TransportError

logger = logging.getLogger(__name__)

# Backoff of transient errors: 2, 4, 8 … seconds, at most this, with jitter.
MAX_BACKOFF_SECONDS = 60
# A row the sweeper took is taken again after this if still owed (its task was lost too).
RESWEEP_AFTER = timedelta(seconds=60)


def _enqueue(message_id) -> None:
    from .tasks import enqueue_now, outbox_send  # tasks import this module; the enqueue is the only way back

    enqueue_now(outbox_send, str(message_id))


def enqueue_after_commit(message_id) -> None:
    transaction.on_commit(lambda: _enqueue(message_id), robust=True)


# --- writing messages --------------------------------------------------------------------------------


def message_enqueue(
    *,
    org_id: uuid.UUID,
    kind: str,
    provider: str,
    channel: str,
    content: dict,
    rank: int = 0,
    job_id: uuid.UUID | None = None,
    team_id: str = "",
    installation: Installation | None = None,
    command_id: uuid.UUID | None = None,
    thread_ts: str = "",
    interaction_token: str = "",
    target_url: str = "",
) -> OutboxMessage | None:
    """Write a message owed to a channel and send it after commit. None if this job already
    owes that message (unique per job × kind × target): safe to call twice.

    Without `installation`, the org's own installation of `team_id` is used; a team this org
    has not linked (or another org's) gives a row recorded `not_connected`, never sent. A
    webhook (`target_url`, its `channel` the URL's key) needs no installation.
    """
    if (
        job_id is not None
        and OutboxMessage.objects.filter(job_id=job_id, kind=kind, provider=provider, channel=channel).exists()
    ):
        return None
    webhook = provider == NotifyProvider.WEBHOOK
    if installation is None and not webhook:
        installation = installation_for_org(org_id=org_id, provider=provider, external_id=team_id)
    elif installation is not None and (installation.org_id != org_id or installation.provider != provider):
        raise ValueError("a message goes only through an installation of its own org and provider")
    fields = {}
    if installation is None and not webhook:
        fields = {
            "status": MessageStatus.FAILED,
            "last_error": NOT_CONNECTED,
            "last_error_message": f"No {provider} installation of this organization for team {team_id or '(none)'}",
        }
    try:
        with transaction.atomic():
            row = OutboxMessage.objects.create(
                org_id=org_id,
                job_id=job_id,
                command_id=command_id,
                kind=kind,
                provider=provider,
                installation=installation,
                team_id=installation.external_id if installation else team_id,
                channel=channel,
                thread_ts=thread_ts,
                interaction_token=interaction_token,
                interaction_at=timezone.now() if interaction_token else None,
                target_url=target_url,
                content=content,
                content_rank=rank,
                **fields,
            )
    except IntegrityError:
        return None  # a concurrent writer owes it first
    if row.status == MessageStatus.PENDING:
        enqueue_after_commit(row.pk)
    return row


def message_revise(*, message_id, content: dict, rank: int) -> bool:
    """Replace a message's content with a later state (an edit). Content of a rank not above
    the current one is ignored, so the channel never goes back to an earlier state. A failed
    message stays failed, its content kept current for an admin's retry."""
    now = timezone.now()
    revised = OutboxMessage.objects.filter(pk=message_id, content_rank__lt=rank).update(
        content=content,
        content_rank=rank,
        # A row waiting for its Retry-After keeps that wait; its retry sends this content.
        next_attempt_at=Case(
            When(status=MessageStatus.SENT, then=Value(None)),
            default=F("next_attempt_at"),
            output_field=DateTimeField(),
        ),
        # Counting starts again for a new content (a reply is edited many times).
        attempts=Case(
            When(status=MessageStatus.SENT, then=Value(0)), default=F("attempts"), output_field=IntegerField()
        ),
        status=Case(
            When(status=MessageStatus.SENT, then=Value(MessageStatus.PENDING)),
            default=F("status"),
            output_field=CharField(),
        ),
        updated_at=now,
    )
    if revised:
        # (A failed row's task finds nothing owed: cheaper than asking first in a request.)
        enqueue_after_commit(message_id)
    return bool(revised)


def message_retry(*, message: OutboxMessage, actor: Actor) -> OutboxMessage:
    """An admin asks to send a failed message again (after fixing the channel or the install)."""
    with transaction.atomic():
        row = OutboxMessage.objects.select_for_update(of=("self",)).select_related("org", "job").get(pk=message.pk)
        if row.status != MessageStatus.FAILED:
            raise Conflict(
                f"Only a failed delivery can be retried; this one is {row.status}.",
                code="delivery_not_failed",
                details={"status": row.status},
            )
        if row.provider != NotifyProvider.WEBHOOK and (row.kind != MessageKind.CHAT_REPLY or row.installation is None):
            # The workspace may have been linked (or relinked) since.
            row.installation = installation_for_org(org_id=row.org_id, provider=row.provider, external_id=row.team_id)
        row.status = MessageStatus.PENDING
        row.last_error = row.last_error_message = ""
        row.next_attempt_at = row.lease_until = row.lease_token = None
        # An admin's retry accepts the risk of a duplicate when the last outcome was unknown.
        row.uncertain_since = None
        row.save()
        data = {"provider": row.provider, "channel": row.target}
        if row.job is not None:
            data["shortId"] = row.job.short_id
        audit_record(org=row.org, actor=actor, action="notification.retried", target=row, data=data)
        enqueue_after_commit(row.pk)
    return row


# --- delivering --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    row: OutboxMessage
    token: uuid.UUID


class Outcome:
    SENT = "sent"
    UNCHANGED = "unchanged"
    NOT_OWED = "not_owed"
    FAILED = "failed"
    RETRY = "retry"


@dataclass(frozen=True)
class Attempt:
    outcome: str
    # For RETRY: seconds until the next attempt, and the provider's Retry-After if it gave one.
    retry_in: float = 0.0
    retry_after: float | None = None


def _owed(now: datetime) -> Q:
    """A row a worker may take now: pending and due, or claimed by a worker whose lease ran out."""
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return (Q(status=MessageStatus.PENDING) & due) | Q(status=MessageStatus.SENDING, lease_until__lt=now)


def message_claim(*, message_id) -> Claim | None:
    """Take the row with a lease (a conditional update: one worker wins), or None if not owed now."""
    now = timezone.now()
    token = uuid.uuid4()
    lease = timedelta(seconds=settings.DEPLITE_NOTIFY_LEASE_SECONDS)
    with transaction.atomic():
        row = OutboxMessage.objects.select_for_update(skip_locked=True).filter(_owed(now), pk=message_id).first()
        if row is None:
            return None
        if row.status == MessageStatus.SENDING:
            # The worker holding it died (or hung) mid-attempt: the provider may have the message.
            row.uncertain_since = row.uncertain_since or row.attempt_started_at or now
            logger.warning("Outbox message %s: lease of a previous attempt expired; checking before resending.", row.pk)
        row.status = MessageStatus.SENDING
        row.lease_token = token
        row.lease_until = now + lease
        row.attempt_started_at = now
        row.attempts = F("attempts") + 1
        row.swept_at = None
        row.save(
            update_fields=[
                "status",
                "lease_token",
                "lease_until",
                "attempt_started_at",
                "attempts",
                "uncertain_since",
                "swept_at",
            ]
        )
    row.refresh_from_db()
    return Claim(row=row, token=token)


def _mine(claim: Claim):
    return OutboxMessage.objects.filter(pk=claim.row.pk, lease_token=claim.token, status=MessageStatus.SENDING)


def message_attempt(*, message_id) -> Attempt:
    """One attempt at one message. Permanent errors are recorded and never retried; a
    transient one is recorded with the time of the next attempt, which the caller schedules."""
    claim = message_claim(message_id=message_id)
    if claim is None:
        return Attempt(Outcome.NOT_OWED)
    row = claim.row
    if row.provider_message_id and row.sent_rank is not None and row.sent_rank >= row.content_rank:
        _mine(claim).update(status=MessageStatus.SENT, lease_token=None, lease_until=None, attempts=F("attempts") - 1)
        return Attempt(Outcome.UNCHANGED)
    try:
        delivery.check_target(row)
        message_id_at_provider = delivery.send(row)
    except TransportError as exc:
        return _record_failure(claim, exc)
    # Sent: unless a later content arrived meanwhile, then it is owed again at once.
    _mine(claim).update(
        status=Case(
            When(content_rank__gt=row.content_rank, then=Value(MessageStatus.PENDING)),
            default=Value(MessageStatus.SENT),
            output_field=CharField(),
        ),
        provider_message_id=message_id_at_provider or row.provider_message_id,
        sent_rank=row.content_rank,
        sent_at=timezone.now(),
        lease_token=None,
        lease_until=None,
        uncertain_since=None,
        last_error="",
        last_error_message="",
        next_attempt_at=None,
    )
    if OutboxMessage.objects.filter(pk=row.pk, status=MessageStatus.PENDING).exists():
        _enqueue(row.pk)
    return Attempt(Outcome.SENT)


def backoff_seconds(attempts: int) -> float:
    base = min(2 ** max(attempts, 1), MAX_BACKOFF_SECONDS)
    return base * random.uniform(0.5, 1.0)  # noqa: S311 (retry jitter, not a secret)  # nosec B311


def _record_failure(claim: Claim, exc: TransportError) -> Attempt:
    row = claim.row
    gave_up = exc.permanent or row.attempts >= settings.DEPLITE_NOTIFY_MAX_ATTEMPTS
    wait = exc.retry_after if exc.retry_after is not None else backoff_seconds(row.attempts)
    _mine(claim).update(
        status=MessageStatus.FAILED if gave_up else MessageStatus.PENDING,
        last_error=exc.code,
        last_error_message=(
            exc.message if not gave_up or exc.permanent else f"gave up after {row.attempts} attempts: {exc.message}"
        )[:2000],
        lease_token=None,
        lease_until=None,
        next_attempt_at=None if gave_up else timezone.now() + timedelta(seconds=wait),
    )
    verdict = "failed" if gave_up else "will retry"
    (logger.warning if gave_up else logger.info)("Outbox %s to %s: %s (%s)", row.pk, row.provider, exc.code, verdict)
    if gave_up:
        return Attempt(Outcome.FAILED)
    return Attempt(Outcome.RETRY, retry_in=wait, retry_after=exc.retry_after)


# --- pace and the sweeper ---------------------------------------------------------------------------


def message_pace(*, message_id, wait: float) -> None:
    """A message waits `wait` seconds for its channel's send slot: no claim before then."""
    OutboxMessage.objects.filter(pk=message_id, status=MessageStatus.PENDING).update(
        # A little early, so the countdown task that arrives on time is never refused.
        next_attempt_at=timezone.now() + timedelta(seconds=max(wait - 0.25, 0))
    )


def messages_owed(*, grace: timedelta, limit: int = 500) -> list[str]:
    """Ids of rows whose task was lost: still owed `grace` after their scheduled time (or
    after they were written, when nothing was scheduled), or claimed by a dead worker.

    Every scheduled attempt sets `next_attempt_at`, so a short grace suffices: a killed
    worker's paced backlog (countdown tasks it held unacknowledged) moves again within
    seconds, not when the broker's visibility timeout gives those tasks back. A row taken
    is stamped `swept_at` and taken again only `RESWEEP_AFTER` later, so the queue does not
    fill with copies while no worker runs.
    """
    now = timezone.now()
    late = Q(status=MessageStatus.PENDING) & (
        Q(next_attempt_at__isnull=True, updated_at__lt=now - grace) | Q(next_attempt_at__lt=now - grace)
    )
    lost_lease = Q(status=MessageStatus.SENDING, lease_until__lt=now)
    not_just_swept = Q(swept_at__isnull=True) | Q(swept_at__lt=now - RESWEEP_AFTER)
    ids = list(
        OutboxMessage.objects.filter((late | lost_lease) & not_just_swept)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        OutboxMessage.objects.filter(pk__in=ids).update(swept_at=now)
    return [str(pk) for pk in ids]
