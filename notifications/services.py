"""Writes for notifications: which deliveries a finished job owes, delivering one, retrying one.

The flow: `job_finished` → `deliveries_for_finished_job` writes the rows (unique per
job × target, so a second signal or a rerun of the receiver adds nothing) and enqueues one
task per row after commit → `delivery_attempt` claims the row with a lease, calls the
provider, records the message id. A row whose task was lost (broker down, worker killed)
is picked up by the sweeper (`deliveries_owed`).

Chat-started jobs: whoever starts a job from chat calls `chat_reply_register`, and the job's
one reply message is kept up to date (queued → running with its step → result).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from deplite.errors import Conflict
from integrations.discord import transport as discord
from integrations.models import Installation, Provider
from integrations.slack import transport as slack
from integrations.transport import TransportError
from orgs.actors import Actor
from orgs.services import audit_record
from triggers.models import Job, JobStatus, NotifyOn

from . import rendering
from .models import DeliveryKind, DeliveryStatus, NotificationDelivery

logger = logging.getLogger(__name__)

NOT_CONNECTED = "not_connected"
# A Discord interaction token is valid 15 minutes; past this, edit the message with the bot token.
INTERACTION_TOKEN_TTL = timedelta(minutes=14)
# While a chat-started job runs, its reply is re-rendered at least this often (a step event
# edits it sooner); an unchanged rendering costs no provider call.
CHAT_REPLY_REFRESH = timedelta(seconds=10)

FAILURE_STATUSES = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})


def notify_on_matches(notify_on: str, status: str) -> bool:
    """notifyOn × final status. A cancelled or timed-out (failed) job counts as a failure."""
    if notify_on == NotifyOn.ALWAYS:
        return True
    if notify_on == NotifyOn.SUCCESS:
        return status == JobStatus.SUCCEEDED
    if notify_on == NotifyOn.FAILURE:
        return status in FAILURE_STATUSES
    return False


def installation_for(*, org_id, provider: str, team_id: str) -> Installation | None:
    """The installation of *this org* for a workspace / guild: never another org's."""
    if not provider or not team_id:
        return None
    return Installation.objects.filter(org_id=org_id, provider=provider, external_id=team_id).first()


# --- creating deliveries -----------------------------------------------------------------------------


def deliveries_for_finished_job(*, job_id: uuid.UUID) -> list[NotificationDelivery]:
    """Write the deliveries a finished job owes and enqueue them. Safe to call twice."""
    from .tasks import delivery_send  # tasks import services; the enqueue is the only way back

    job = Job.objects.select_related("org").filter(pk=job_id).first()
    if job is None or not job.is_final:
        return []
    created: list[NotificationDelivery] = []
    with transaction.atomic():
        if job.notify_provider and job.notify_channel_id and notify_on_matches(job.notify_on, job.status):
            row = _delivery_get_or_create(
                job=job,
                kind=DeliveryKind.RESULT,
                provider=job.notify_provider,
                team_id=job.notify_team_id,
                channel=job.notify_channel_id,
            )
            if row is not None:
                created.append(row)
        replies = list(
            NotificationDelivery.objects.filter(job=job, kind=DeliveryKind.CHAT_REPLY).select_related("installation")
        )
        for reply in replies:
            # The reply turns into the result, whatever notifyOn says.
            NotificationDelivery.objects.filter(pk=reply.pk, status=DeliveryStatus.PENDING, last_error="").update(
                next_attempt_at=None
            )
            if (
                job.status in FAILURE_STATUSES
                and not NotificationDelivery.objects.filter(
                    job=job, provider=reply.provider, channel=reply.channel, kind=DeliveryKind.RESULT
                ).exists()
            ):
                # Also to the channel itself, so a failure is not buried in a thread.
                row = _delivery_get_or_create(
                    job=job,
                    kind=DeliveryKind.CHAT_FAILURE,
                    provider=reply.provider,
                    team_id=reply.team_id,
                    channel=reply.channel,
                )
                if row is not None:
                    created.append(row)
        for row in [*created, *replies]:
            if row.status == DeliveryStatus.PENDING:
                transaction.on_commit(lambda row_id=str(row.pk): _enqueue(delivery_send, row_id), robust=True)
    return created


def _enqueue(task, delivery_id: str) -> None:
    from deplite.background import enqueue_now

    enqueue_now(task, delivery_id)


def _delivery_get_or_create(
    *, job: Job, kind: str, provider: str, team_id: str, channel: str
) -> NotificationDelivery | None:
    """The row for this job × target; a new one only the first time. None if it existed already."""
    if NotificationDelivery.objects.filter(job=job, kind=kind, provider=provider, channel=channel).exists():
        return None
    installation = installation_for(org_id=job.org_id, provider=provider, team_id=team_id)
    fields = {}
    if installation is None:
        # A workspace this org has not linked (or another org's): recorded, never sent.
        fields = {
            "status": DeliveryStatus.FAILED,
            "last_error": NOT_CONNECTED,
            "last_error_message": f"No {provider} installation of this organization for team {team_id or '(none)'}",
        }
    try:
        with transaction.atomic():
            return NotificationDelivery.objects.create(
                org_id=job.org_id,
                job=job,
                kind=kind,
                provider=provider,
                installation=installation,
                team_id=team_id,
                channel=channel,
                **fields,
            )
    except IntegrityError:
        return None  # a concurrent receiver wrote it first


def chat_reply_register(
    *,
    job_id: uuid.UUID,
    provider: str,
    installation: Installation,
    channel: str,
    thread_ts: str = "",
    interaction_token: str = "",
    message_id: str = "",
) -> NotificationDelivery:
    """Keep one chat message about `job_id` up to date: the seam the chat side calls.

    Call it in the transaction that creates a chat-started job (or right after). `message_id`
    is the reply already posted, if any (Slack ts, Discord message id): it is edited in place;
    without one, the first delivery posts the reply (in `thread_ts` on Slack) and remembers it.
    On Discord, `interaction_token` edits the interaction's original response while it is
    valid (15 minutes), then the bot edits the message by id. Idempotent per job and channel.
    """
    from .tasks import delivery_send

    job = Job.objects.only("org_id").get(pk=job_id)
    if installation.org_id != job.org_id or installation.provider != provider:
        raise ValueError("a chat reply goes only through an installation of the job's own org and provider")
    with transaction.atomic():
        row, created = NotificationDelivery.objects.get_or_create(
            job_id=job_id,
            kind=DeliveryKind.CHAT_REPLY,
            provider=provider,
            channel=channel,
            defaults={
                "org_id": job.org_id,
                "installation": installation,
                "team_id": installation.external_id,
                "thread_ts": thread_ts,
                "interaction_token": interaction_token,
                "interaction_at": timezone.now() if interaction_token else None,
                "provider_message_id": message_id,
                # An already posted reply shows the queued state.
                "rendered_state": "queued::" if message_id else "",
            },
        )
        if created:
            transaction.on_commit(lambda: _enqueue(delivery_send, str(row.pk)), robust=True)
    return row


def chat_reply_refresh(*, job_id: uuid.UUID) -> int:
    """Ask for an edit of the job's pending chat replies (a step started or finished)."""
    from .tasks import delivery_send

    replies = NotificationDelivery.objects.filter(
        job_id=job_id, kind=DeliveryKind.CHAT_REPLY, status=DeliveryStatus.PENDING
    )
    ids = list(replies.values_list("pk", flat=True))
    if ids:
        # Due now, unless it waits for a provider's Retry-After (that retry renders the latest state).
        replies.filter(last_error="").update(next_attempt_at=None)
    for row_id in ids:
        transaction.on_commit(lambda row_id=str(row_id): _enqueue(delivery_send, row_id), robust=True)
    return len(ids)


def delivery_retry(*, delivery: NotificationDelivery, actor: Actor) -> NotificationDelivery:
    """An admin asks to send a failed delivery again (after fixing the channel or the install)."""
    from .tasks import delivery_send

    with transaction.atomic():
        row = NotificationDelivery.objects.select_for_update().select_related("job").get(pk=delivery.pk)
        if row.status != DeliveryStatus.FAILED:
            raise Conflict(
                f"Only a failed delivery can be retried; this one is {row.status}.",
                code="delivery_not_failed",
                details={"status": row.status},
            )
        installation = row.installation
        if row.kind != DeliveryKind.CHAT_REPLY or installation is None:
            # The workspace may have been linked (or relinked) since.
            installation = installation_for(org_id=row.org_id, provider=row.provider, team_id=row.team_id)
        row.installation = installation
        row.status = DeliveryStatus.PENDING
        row.last_error = row.last_error_message = ""
        row.next_attempt_at = row.lease_until = row.lease_token = None
        # An admin's retry accepts the risk of a duplicate when the last outcome was unknown.
        row.uncertain_since = None
        row.save()
        audit_record(
            org=row.job.org,
            actor=actor,
            action="notification.retried",
            target=row,
            data={"shortId": row.job.short_id, "provider": row.provider, "channel": row.channel},
        )
        transaction.on_commit(lambda: _enqueue(delivery_send, str(row.pk)), robust=True)
    return row


# --- delivering --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    row: NotificationDelivery
    token: uuid.UUID


class Outcome:
    SENT = "sent"
    UNCHANGED = "unchanged"
    NOT_OWED = "not_owed"
    FAILED = "failed"
    RETRY = "retry"


def _owed(now: datetime) -> Q:
    """A row a worker may take now: pending and due, or claimed by a worker whose lease ran out."""
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return (Q(status=DeliveryStatus.PENDING) & due) | Q(status=DeliveryStatus.SENDING, lease_until__lt=now)


def delivery_claim(*, delivery_id) -> Claim | None:
    """Take the row with a lease (a conditional update: one worker wins), or None if not owed now."""
    now = timezone.now()
    token = uuid.uuid4()
    lease = timedelta(seconds=settings.DEPLITE_NOTIFY_LEASE_SECONDS)
    with transaction.atomic():
        row = (
            NotificationDelivery.objects.select_for_update(skip_locked=True).filter(_owed(now), pk=delivery_id).first()
        )
        if row is None:
            return None
        if row.status == DeliveryStatus.SENDING:
            # The worker holding it died (or hung) mid-attempt: the provider may have the message.
            row.uncertain_since = row.uncertain_since or row.attempt_started_at or now
            logger.warning("Notification %s: lease of a previous attempt expired; checking before resending.", row.pk)
        row.status = DeliveryStatus.SENDING
        row.lease_token = token
        row.lease_until = now + lease
        row.attempt_started_at = now
        row.attempts = F("attempts") + 1
        row.save(
            update_fields=["status", "lease_token", "lease_until", "attempt_started_at", "attempts", "uncertain_since"]
        )
    row.refresh_from_db()
    return Claim(row=row, token=token)


def _mine(claim: Claim):
    return NotificationDelivery.objects.filter(pk=claim.row.pk, lease_token=claim.token, status=DeliveryStatus.SENDING)


def delivery_attempt(*, delivery_id) -> str:
    """One attempt at one delivery. Raises TransportError (not permanent) when it should be tried again.

    Permanent errors are recorded on the row and not raised: they are never retried.
    """
    claim = delivery_claim(delivery_id=delivery_id)
    if claim is None:
        return Outcome.NOT_OWED
    row = claim.row
    job = Job.objects.select_related("org").get(pk=row.job_id)
    message = rendering.render(job)
    if row.kind == DeliveryKind.CHAT_REPLY and row.provider_message_id and row.rendered_state == message.state:
        _release_unchanged(claim, job)
        return Outcome.UNCHANGED
    try:
        _check_target(row, job)
        message_id = _send(row, message)
    except TransportError as exc:
        if exc.permanent:
            _record_failure(claim, exc, permanent=True)
            return Outcome.FAILED
        gave_up = _record_failure(claim, exc, permanent=False)
        if gave_up:
            return Outcome.FAILED
        raise
    final = job.is_final or row.kind != DeliveryKind.CHAT_REPLY
    now = timezone.now()
    _mine(claim).update(
        status=DeliveryStatus.SENT if final else DeliveryStatus.PENDING,
        provider_message_id=message_id or row.provider_message_id,
        rendered_state=message.state,
        sent_at=now,
        lease_token=None,
        lease_until=None,
        uncertain_since=None,
        last_error="",
        last_error_message="",
        next_attempt_at=None if final else now + CHAT_REPLY_REFRESH,
        # A chat reply is edited many times: its attempt cap counts failures since the last edit.
        **({} if final else {"attempts": 0}),
    )
    if (
        not final
        and Job.objects.filter(
            pk=job.pk, status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]
        ).exists()
    ):
        # The job ended while this edit was on its way (its job_finished found the row claimed).
        from .tasks import delivery_send

        NotificationDelivery.objects.filter(pk=row.pk, status=DeliveryStatus.PENDING).update(next_attempt_at=None)
        _enqueue(delivery_send, str(row.pk))
    return Outcome.SENT


def _release_unchanged(claim: Claim, job: Job) -> None:
    now = timezone.now()
    _mine(claim).update(
        status=DeliveryStatus.SENT if job.is_final else DeliveryStatus.PENDING,
        lease_token=None,
        lease_until=None,
        attempts=F("attempts") - 1,  # nothing was attempted
        next_attempt_at=None if job.is_final else now + CHAT_REPLY_REFRESH,
    )


def _record_failure(claim: Claim, exc: TransportError, *, permanent: bool) -> bool:
    """Write the error on the row. Returns True when the row is now failed for good."""
    row = claim.row
    gave_up = permanent or row.attempts >= settings.DEPLITE_NOTIFY_MAX_ATTEMPTS
    now = timezone.now()
    # Retry-After is a floor for the next claim; other transient errors leave the timing to the task's backoff.
    wait = exc.retry_after if exc.retry_after is not None else 0
    _mine(claim).update(
        status=DeliveryStatus.FAILED if gave_up else DeliveryStatus.PENDING,
        last_error=exc.code,
        last_error_message=(
            exc.message if not gave_up or permanent else f"gave up after {row.attempts} attempts: {exc.message}"
        )[:2000],
        lease_token=None,
        lease_until=None,
        # The task's own retry comes first; the sweeper steps in only if that retry is lost.
        next_attempt_at=now + timedelta(seconds=wait),
    )
    log = logger.warning if gave_up else logger.info
    log(
        "Notification %s to %s:%s: %s (%s)",
        row.pk,
        row.provider,
        row.channel,
        exc.code,
        "failed" if gave_up else "will retry",
    )
    return gave_up


def _check_target(row: NotificationDelivery, job: Job) -> None:
    """Only an installation of the job's own org is ever used; a Discord channel must be in its guild."""
    installation = row.installation
    if installation is None or installation.org_id != job.org_id or installation.provider != row.provider:
        raise TransportError(NOT_CONNECTED, "No installation of this organization for this workspace", permanent=True)
    if row.provider == Provider.DISCORD and row.kind != DeliveryKind.CHAT_REPLY:
        guild = discord.channel_guild(channel=row.channel)
        if guild != installation.external_id:
            raise TransportError(
                NOT_CONNECTED, "The channel is not in this organization's Discord server", permanent=True
            )


def _send(row: NotificationDelivery, message: rendering.Message) -> str:
    """Post (or edit) the message; returns the provider's message id."""
    delivery_id = str(row.pk)
    if row.provider == Provider.SLACK:
        token = row.installation.bot_token
        if row.kind == DeliveryKind.CHAT_REPLY and row.provider_message_id:
            return slack.update_message(
                token=token, channel=row.channel, ts=row.provider_message_id, body=message.slack()
            )
        if row.uncertain_since is not None:
            try:
                found = slack.find_posted(
                    token=token,
                    channel=row.channel,
                    outbox_id=delivery_id,
                    since=row.uncertain_since,
                    thread_ts=row.thread_ts if row.kind == DeliveryKind.CHAT_REPLY else "",
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
                logger.info("Notification %s was posted before its worker stopped; not posting again.", row.pk)
                if row.kind == DeliveryKind.CHAT_REPLY:
                    return slack.update_message(token=token, channel=row.channel, ts=found, body=message.slack())
                return found
        return slack.post_message(
            token=token,
            channel=row.channel,
            body=message.slack(),
            outbox_id=delivery_id,
            thread_ts=row.thread_ts if row.kind == DeliveryKind.CHAT_REPLY else "",
        )
    body = message.discord()
    if row.kind == DeliveryKind.CHAT_REPLY:
        fresh = row.interaction_at is not None and timezone.now() - row.interaction_at < INTERACTION_TOKEN_TTL
        if row.interaction_token and fresh:
            return discord.edit_original(interaction_token=row.interaction_token, body=body) or (
                row.provider_message_id
            )
        if row.provider_message_id:
            return discord.edit_message(channel=row.channel, message_id=row.provider_message_id, body=body)
    # Discord's enforced nonce makes a repeat within minutes return the first message.
    return discord.post_message(channel=row.channel, body=body, nonce=row.pk.hex[:25])


# --- the sweeper -------------------------------------------------------------------------------------


def deliveries_owed(*, grace: timedelta, limit: int = 500) -> list[str]:
    """Ids of rows whose task was lost: due for longer than `grace`, or claimed by a dead worker.

    `grace` exceeds the longest backoff of the task's own retries, so a row waiting for its
    retry is not enqueued twice (if it were, the claim would still let one attempt through).
    """
    now = timezone.now()
    due_long_ago = Q(status=DeliveryStatus.PENDING) & (
        Q(next_attempt_at__isnull=True, updated_at__lt=now - grace) | Q(next_attempt_at__lt=now - grace)
    )
    # A chat reply of a running job is re-rendered at its refresh time, no grace.
    reply_refresh = Q(status=DeliveryStatus.PENDING, kind=DeliveryKind.CHAT_REPLY, next_attempt_at__lte=now)
    lost_lease = Q(status=DeliveryStatus.SENDING, lease_until__lt=now)
    return [
        str(pk)
        for pk in NotificationDelivery.objects.filter(due_long_ago | reply_refresh | lost_lease)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    ]


def delivery_pace(*, delivery_id, wait: float) -> None:
    """A delivery waits `wait` seconds for its channel's send slot: no claim before then."""
    NotificationDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(
        # A little early, so the countdown task that arrives on time is never refused.
        next_attempt_at=timezone.now() + timedelta(seconds=max(wait - 0.25, 0))
    )
