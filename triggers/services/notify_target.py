"""A trigger's webhook target: its signing secret (generated here, shown once, rotatable) and
its disabled state (a 410 Gone from the endpoint; a successful test or a new URL lifts it)."""

from __future__ import annotations

import secrets
import uuid

from django.db import transaction
from django.utils import timezone

from deplite.errors import Conflict
from orgs.actors import Actor
from orgs.services import audit_record

from ..models import NotifyProvider, Trigger

# Stripe's prefix for endpoint secrets: recognisable in a secret scanner and in a paste.
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def new_notify_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def trigger_notify_secret_rotate(*, trigger: Trigger, actor: Actor) -> tuple[Trigger, str]:
    """A new signing secret for the trigger's webhook; returned this once. Deliveries from now
    on, retries of earlier ones included, are signed with it."""
    if trigger.notify_provider != NotifyProvider.WEBHOOK:
        raise Conflict("This trigger does not notify a webhook.", code="not_a_webhook_target")
    secret = new_notify_secret()
    with transaction.atomic():
        trigger.notify_secret = secret
        trigger.save(update_fields=["notify_secret", "updated_at"])
        audit_record(
            org=trigger.org,
            actor=actor,
            action="trigger.notify_secret_rotated",
            target=trigger,
            data={"name": trigger.name},
        )
    return trigger, secret


def trigger_notify_disable(*, trigger_id: uuid.UUID, url: str, reason: str) -> bool:
    """The endpoint said it wants no more events (410): stop sending to it. Only while the trigger
    still names that URL (a job's copy may be older than the trigger's). True if it was enabled."""
    with transaction.atomic():
        trigger = (
            Trigger.objects.select_for_update().select_related("org").filter(pk=trigger_id, notify_url=url).first()
        )
        if trigger is None or trigger.notify_disabled_at is not None:
            return False
        trigger.notify_disabled_at = timezone.now()
        trigger.notify_disabled_reason = reason[:300]
        trigger.save(update_fields=["notify_disabled_at", "notify_disabled_reason", "updated_at"])
        audit_record(
            org=trigger.org,
            actor=Actor.system("webhook"),
            action="trigger.notify_disabled",
            target=trigger,
            data={"reason": trigger.notify_disabled_reason},
        )
    return True


def trigger_notify_enable(*, trigger: Trigger, actor: Actor) -> bool:
    """Send to the endpoint again (its test delivery succeeded). True if it was disabled."""
    with transaction.atomic():
        enabled = Trigger.objects.filter(pk=trigger.pk, notify_disabled_at__isnull=False).update(
            notify_disabled_at=None, notify_disabled_reason="", updated_at=timezone.now()
        )
        if enabled:
            audit_record(org=trigger.org, actor=actor, action="trigger.notify_enabled", target=trigger, data={})
    trigger.notify_disabled_at, trigger.notify_disabled_reason = None, ""
    return bool(enabled)
