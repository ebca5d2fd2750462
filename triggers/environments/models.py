"""An environment (`production`, `staging`) and the approvals of its jobs.

Imported by triggers.models (the app's model module), so Django registers them in `triggers`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone

from orgs.models import Organization, Role

MAX_REQUIRED_APPROVALS = 5
DEFAULT_APPROVAL_TIMEOUT_SECONDS = 24 * 3600


class Concurrency(models.TextChoices):
    ONE = "one", "One at a time"
    UNLIMITED = "unlimited", "Unlimited"


class QueueOrder(models.TextChoices):
    FIFO = "fifo", "In order"
    NEWEST = "newest", "Newest only"


class Environment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by the unique (org, name) constraint, which starts with it.
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="environments", db_index=False)
    # A slug, fixed once created: triggers, jobs and the API name an environment by it.
    name = models.SlugField(max_length=50)
    description = models.CharField(max_length=300, blank=True, default="")

    concurrency = models.CharField(max_length=10, choices=Concurrency.choices, default=Concurrency.ONE)
    queue = models.CharField(max_length=10, choices=QueueOrder.choices, default=QueueOrder.FIFO)
    required_approvals = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(MAX_REQUIRED_APPROVALS)]
    )
    # Who may approve: the members named here, or (none named) members with at least this role.
    approver_role = models.CharField(max_length=10, choices=Role.choices, default=Role.ADMIN)
    approvers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    prevent_self_approval = models.BooleanField(default=True)
    approval_timeout_seconds = models.PositiveIntegerField(default=DEFAULT_APPROVAL_TIMEOUT_SECONDS)
    # Glob patterns (fnmatch) a run's ref must match; empty: any ref.
    allowed_refs = models.JSONField(default=list, blank=True)

    # The lock: while set (and not expired), only its holder's runs go through.
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept beside the user: the lock names its holder even after the user is gone.
    locked_by_label = models.CharField(max_length=255, blank=True, default="")
    lock_reason = models.CharField(max_length=500, blank=True, default="")
    locked_at = models.DateTimeField(null=True, blank=True)
    lock_expires_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="environment_unique_org_name")]
        indexes = [
            # The sweeper's expired locks: only locked environments are in it.
            models.Index(
                fields=["lock_expires_at"], condition=models.Q(lock_expires_at__isnull=False), name="env_lock_expiry"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.org})"

    def is_locked(self, now: datetime | None = None) -> bool:
        """Locked now: a lock whose expiry has passed no longer holds, even before the sweeper clears it."""
        if self.locked_at is None:
            return False
        return self.lock_expires_at is None or self.lock_expires_at > (now or timezone.now())

    @property
    def lock_description(self) -> str:
        """ "locked by ana@example.com: 'release freeze'"."""
        who = self.locked_by_label or "a former member"
        return f"locked by {who}: '{self.lock_reason}'" if self.lock_reason else f"locked by {who}"


class ApprovalDecision(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class JobApproval(models.Model):
    """One person's decision on a job waiting for approval: at most one per person and job."""

    id = models.BigAutoField(primary_key=True)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    # Indexed by the unique (job, user) constraint, which starts with it.
    job = models.ForeignKey("triggers.Job", on_delete=models.CASCADE, related_name="approvals", db_index=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_label = models.CharField(max_length=255, blank=True, default="")
    decision = models.CharField(max_length=10, choices=ApprovalDecision.choices)
    comment = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    token_trigger_field = "job__trigger_id"  # noqa: S105 (a lookup, not a secret)

    class Meta:
        ordering = ["job", "created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "user"], name="jobapproval_unique_job_user")]
