"""Celery tasks for notifications: deliver one row (paced per channel, retried), and the sweeper.

Tasks take ids and re-read their row; the claim (a conditional update with a lease) makes
running one twice harmless.
"""

from __future__ import annotations

import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from deplite import metrics
from integrations.transport import TransportError

from . import pace, services
from .models import DeliveryStatus, NotificationDelivery


@shared_task(
    bind=True,
    autoretry_for=(TransportError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=settings.DEPLITE_NOTIFY_MAX_ATTEMPTS,
    ignore_result=True,
)
def delivery_send(self, delivery_id: str, paced: bool = False) -> str:
    """Deliver one notification. A transient error is raised for Celery's backoff-with-jitter retry;
    a 429 waits for the provider's Retry-After instead (and holds the channel's other sends back)."""
    eager = bool(self.request.is_eager)
    target = (
        NotificationDelivery.objects.filter(pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING])
        .values("provider", "channel")
        .first()
    )
    if target is None:
        return services.Outcome.NOT_OWED
    if not paced and not eager:
        wait = pace.reserve_slot(provider=target["provider"], channel=target["channel"])
        if wait > 0.05:
            services.delivery_pace(delivery_id=delivery_id, wait=wait)
            self.apply_async(args=[delivery_id], kwargs={"paced": True}, countdown=wait)
            return "paced"
    try:
        outcome = services.delivery_attempt(delivery_id=delivery_id)
        metrics.NOTIFICATION_DELIVERIES.labels(provider=target["provider"], outcome=outcome).inc()
        return outcome
    except TransportError as exc:
        metrics.NOTIFICATION_DELIVERIES.labels(provider=target["provider"], outcome="retried").inc()
        if eager:
            # In-process (embedded default): never sleep in a request; the sweeper retries when due.
            return services.Outcome.RETRY
        if exc.retry_after is not None:
            wait = pace.reserve_slot(provider=target["provider"], channel=target["channel"], not_before=exc.retry_after)
            countdown = max(wait, exc.retry_after) + random.uniform(0, 0.25)  # noqa: S311 (retry jitter, not a secret)  # nosec B311
            raise self.retry(args=[delivery_id], kwargs={"paced": True}, countdown=countdown, exc=exc) from None
        raise  # autoretry_for: exponential backoff with jitter


@shared_task(ignore_result=True)
def deliveries_sweep() -> int:
    """Beat: re-enqueue deliveries whose task was lost, and refresh running chat replies."""
    from deplite.background import enqueue_now

    grace = timedelta(seconds=settings.DEPLITE_NOTIFY_SWEEP_GRACE_SECONDS)
    ids = services.deliveries_owed(grace=grace)
    for delivery_id in ids:
        enqueue_now(delivery_send, delivery_id)
    return len(ids)
