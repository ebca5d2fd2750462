"""The run endpoint's Idempotency-Key rows: a model of the triggers app, imported by triggers.models."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from orgs.models import Organization


class IdempotencyKey(models.Model):
    """The stored first answer to a run request that carried an `Idempotency-Key`.

    Scoped to the trigger (two triggers may see the same CI run id). Only a request that
    created a job is stored: one refused by validation or a conflict may be retried.
    """

    id = models.BigAutoField(primary_key=True)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    # Indexed by the unique (trigger, key) constraint, which starts with it.
    trigger = models.ForeignKey("triggers.Trigger", on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    job = models.ForeignKey("triggers.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trigger", "key"], name="idempotencykey_unique_trigger_key")]
