"""A trigger's schedules, and the one row per fire that makes a fire happen exactly once."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.timezone import now as _now

from orgs.models import ActorStamp, ApiToken, Organization


class CatchUp(models.TextChoices):
    """What a tick does with fires missed by more than the late-fire grace (services.LATE_FIRE_GRACE)."""

    LATEST = "latest", "Run the latest missed fire once"
    NONE = "none", "Skip missed fires"


class Schedule(ActorStamp):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    trigger = models.ForeignKey("triggers.Trigger", on_delete=models.CASCADE, related_name="schedules")
    cron = models.CharField(max_length=100)
    timezone = models.CharField(max_length=64, default="UTC")
    # Blank: the trigger's default ref at fire time (as a run without a ref).
    ref = models.CharField(max_length=255, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    catch_up = models.CharField(max_length=6, choices=CatchUp.choices, default=CatchUp.LATEST)
    # Whose jobs these are: a fire runs as the person (or org token) who created the schedule,
    # and is refused once they have left the org (or the token is revoked).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # Stored so a tick reads only the due rows through the partial index below, instead of asking
    # cron about every schedule. Null when disabled or when the expression has no future fire.
    next_fire_at = models.DateTimeField(null=True, blank=True)
    last_fire_at = models.DateTimeField(null=True, blank=True)
    last_job = models.ForeignKey(
        "triggers.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # Why the last fire made no job (trigger disabled, creator gone), shown beside it; "" when it did.
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=_now)
    updated_at = models.DateTimeField(auto_now=True)

    # A `trigger` API token sees the schedules of the triggers it lists.
    token_trigger_field = "trigger_id"  # noqa: S105 (a lookup, not a secret)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["next_fire_at"], condition=models.Q(enabled=True), name="schedule_due"),
        ]

    def __str__(self) -> str:
        return f"{self.cron} ({self.timezone})"


class ScheduleFire(models.Model):
    """One (schedule, fire time) that was acted on, with the job it made (none when refused).

    Written in the same transaction as the job: the unique constraint is what makes a fire happen
    once even if two ticks (two beats started by mistake) reach the same schedule.
    """

    id = models.BigAutoField(primary_key=True)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="fires", db_index=False)
    fire_at = models.DateTimeField()
    job = models.ForeignKey("triggers.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=_now)

    token_trigger_field = "schedule__trigger_id"  # noqa: S105 (a lookup, not a secret)

    class Meta:
        ordering = ["schedule", "-fire_at"]
        constraints = [models.UniqueConstraint(fields=["schedule", "fire_at"], name="schedulefire_unique_fire")]
