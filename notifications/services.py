"""Which messages a job owes to chat, rendered and handed to the outbox (`integrations.outbox`).

A finished job owes its result to the trigger's notify target (filtered by notifyOn: a chat
channel, or a webhook, which gets the JSON document of integrations.webhook.events); a
chat-started job's reply (written by the chat side when the command came in) is revised
as the job moves: its current step while it runs, its result at the end. A failure of a job
whose reply sits in a thread is also posted to the channel, so it is not buried there.
Sending, retrying, pacing and looking before posting again are the outbox's.
"""

from __future__ import annotations

import uuid

from django.db import transaction

from integrations import outbox
from integrations.models import MessageKind, OutboxMessage
from integrations.webhook import events as webhook_events
from triggers.models import Job, JobStatus, NotifyOn, NotifyProvider

from . import rendering

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


def _result_target(job: Job) -> dict | None:
    """Where the job's result goes (the target copied from its trigger), as message_enqueue's arguments."""
    if job.notify_provider == NotifyProvider.WEBHOOK:
        if not job.notify_url:
            return None
        return {
            "provider": job.notify_provider,
            "channel": webhook_events.channel_key(job.notify_url),
            "target_url": job.notify_url,
        }
    if job.notify_provider and job.notify_channel_id:
        return {"provider": job.notify_provider, "team_id": job.notify_team_id, "channel": job.notify_channel_id}
    return None


def _content(job: Job, message: rendering.Message, provider: str, *, event: str = webhook_events.JOB_FINISHED) -> dict:
    """The message body for a chat provider; for a webhook, the JSON document it is POSTed."""
    if provider == NotifyProvider.WEBHOOK:
        return webhook_events.job_event(job, event=event)
    return message.body(provider)


def _replies(job_id: uuid.UUID) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(job_id=job_id, kind=MessageKind.CHAT_REPLY))


def deliveries_for_finished_job(*, job_id: uuid.UUID) -> list[OutboxMessage]:
    """Hand the outbox what a finished job owes. Safe to call twice: returns only the new rows."""
    job = Job.objects.select_related("org").filter(pk=job_id).first()
    if job is None or not job.is_final:
        return []
    message = rendering.render(job)
    created: list[OutboxMessage] = []
    with transaction.atomic():
        target = _result_target(job)
        if target is not None and notify_on_matches(job.notify_on, job.status):
            row = outbox.message_enqueue(
                org_id=job.org_id,
                job_id=job.pk,
                kind=MessageKind.RESULT,
                content=_content(job, message, job.notify_provider),
                rank=message.rank,
                **target,
            )
            if row is not None:
                created.append(row)
        for reply in _replies(job.pk):
            # The reply turns into the result, whatever notifyOn says (a failed one keeps it for an admin's retry).
            outbox.message_revise(message_id=reply.pk, content=message.body(reply.provider), rank=message.rank)
            # In a thread only: a reply in the channel itself already shows the failure there.
            if job.status in FAILURE_STATUSES and reply.thread_ts:
                result_here = OutboxMessage.objects.filter(
                    job=job, provider=reply.provider, channel=reply.channel, kind=MessageKind.RESULT
                ).exists()
                if not result_here:
                    row = outbox.message_enqueue(
                        org_id=job.org_id,
                        job_id=job.pk,
                        kind=MessageKind.CHAT_FAILURE,
                        provider=reply.provider,
                        installation=reply.installation,
                        team_id=reply.team_id,
                        channel=reply.channel,
                        content=message.body(reply.provider),
                        rank=message.rank,
                    )
                    if row is not None:
                        created.append(row)
    return created


def chat_reply_refresh(*, job_id: uuid.UUID) -> int:
    """A step started or finished: the job's chat replies show where it is now."""
    replies = _replies(job_id)
    if not replies:
        return 0
    job = Job.objects.select_related("org").get(pk=job_id)
    message = rendering.render(job)
    return sum(
        outbox.message_revise(message_id=reply.pk, content=message.body(reply.provider), rank=message.rank)
        for reply in replies
    )


def deliveries_for_corrected_job(*, job_id: uuid.UUID) -> int:
    """A finished job's result was corrected (its agent came back after the server failed it as
    `agent lost`): every message about it, posted or still owed, is revised to the new result, and
    what the new result owes that the old one did not (notifyOn) is written. Returns the revisions."""
    job = Job.objects.select_related("org").filter(pk=job_id).first()
    if job is None or not job.is_final:
        return 0
    message = rendering.render(job)
    # Both results are final: the correction outranks the one it replaces, so the edit goes through.
    rank = message.rank + 1
    with transaction.atomic():
        revised = sum(
            outbox.message_revise(
                message_id=row.pk,
                content=_content(job, message, row.provider, event=webhook_events.JOB_RESULT_CORRECTED),
                rank=rank,
            )
            for row in OutboxMessage.objects.filter(job_id=job.pk)
        )
    deliveries_for_finished_job(job_id=job.pk)
    return revised
