"""How an outbox row for a webhook reaches its endpoint (integrations.delivery hands it here).

The URL is the job's copy (a trigger edited later does not redirect an earlier job's result);
the secret is the trigger's current one, read at send time: after a rotation every delivery,
retries of earlier ones included, verifies with the new secret, and the secret lives in one
row (one to re-encrypt, one to rotate when leaked) instead of a copy on every job.

A delivery whose outcome is unknown (a worker died mid-call) is sent again with the same
`X-Deplite-Delivery` id: an endpoint cannot be asked whether it got it, so receivers dedupe
by that id (as with GitHub's and Stripe's at-least-once deliveries).
"""

from __future__ import annotations

from triggers import services as trigger_services

from ..models import OutboxMessage
from ..transport import TransportError
from . import events, transport

TRIGGER_DELETED = "trigger_deleted"
TARGET_DISABLED = "target_disabled"


def check_target(row: OutboxMessage) -> None:
    trigger = row.job.trigger if row.job is not None else None
    if trigger is None:
        raise TransportError(
            TRIGGER_DELETED, "The job's trigger was deleted, and with it the secret to sign with", permanent=True
        )
    if trigger.notify_disabled_at is not None and trigger.notify_url == row.target_url:
        raise TransportError(
            TARGET_DISABLED,
            f"The endpoint is disabled ({trigger.notify_disabled_reason}); a successful test or a new URL enables it",
            permanent=True,
        )


def send(row: OutboxMessage) -> str:
    """POST the row's document; returns `http_<status>` as the delivery's message id."""
    trigger = row.job.trigger
    try:
        answer = transport.post_event(
            url=row.target_url,
            secret=trigger.notify_secret,
            body=transport.encode(row.content),
            event=str(row.content.get("event") or events.JOB_FINISHED),
            delivery_id=str(row.pk),
        )
    except TransportError as exc:
        if exc.code == transport.GONE:
            trigger_services.trigger_notify_disable(
                trigger_id=trigger.pk,
                url=row.target_url,
                reason=f"the endpoint answered 410 Gone to the result of job #{row.job.short_id}",
            )
        raise
    return f"http_{answer.status}"
