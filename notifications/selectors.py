"""Reads for notifications: a job's outbox messages (the job API and page)."""

from __future__ import annotations

from django.db.models import QuerySet

from integrations.models import OutboxMessage
from triggers.models import Job


def job_deliveries(*, job: Job) -> QuerySet[OutboxMessage]:
    return OutboxMessage.objects.filter(org_id=job.org_id, job_id=job.pk).order_by("created_at", "id")


def delivery_payload(row: OutboxMessage) -> dict:
    """One entry of the job API's `notifications` list (snake_case: the API renderer camelizes keys)."""
    return {
        "id": str(row.pk),
        "kind": row.kind,
        "provider": row.provider,
        # A webhook's host (its URL's path may hold a credential of the receiver), else the channel.
        "channel": row.target,
        "status": row.status,
        "error": row.error,
        "attempts": row.attempts,
        "sent_at": row.sent_at.isoformat().replace("+00:00", "Z") if row.sent_at else None,
    }


def job_notifications(job: Job, **context) -> list[dict]:
    return [delivery_payload(row) for row in job_deliveries(job=job)]
