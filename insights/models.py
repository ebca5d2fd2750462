"""The DORA rollup: per environment, each hour's deploy counts and sums, and each incident.

Kept by insights.rollup as jobs finish, are corrected or are rolled back, so that a window's
answer reads a few thousand small rows instead of every deploy it holds. Hours, not days: a
window ends at the reader's "now", so its chart buckets start at any minute of the day; the few
hours a bucket's edge cuts through are read from the jobs themselves.
"""

from __future__ import annotations

from django.db import models

from orgs.models import Organization
from triggers.models import Environment


class DeploySums(models.Model):
    """What the rollup keeps of a span's deploys (jobs that succeeded or failed): counts, and sums in
    seconds over the succeeded ones."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+", db_index=False)
    ran = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    # Failed, or succeeded and rolled back within a day (insights.selectors.deploys).
    failures = models.PositiveIntegerField(default=0)
    lead_seconds = models.FloatField(default=0)
    approval_seconds = models.FloatField(default=0)
    queue_seconds = models.FloatField(default=0)
    running_seconds = models.FloatField(default=0)
    commit_count = models.PositiveIntegerField(default=0)
    commit_seconds = models.FloatField(default=0)

    class Meta:
        abstract = True


class EnvironmentHour(DeploySums):
    """The deploys of one environment that finished in one UTC hour."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["environment", "hour"], name="insights_env_hour")]


class EnvironmentDay(DeploySums):
    """The sum of an environment's hour rows of one UTC day: what a 90-day window's whole days read."""

    day = models.DateTimeField()  # its first instant, UTC

    class Meta:
        constraints = [models.UniqueConstraint(fields=["environment", "day"], name="insights_env_day")]


class EnvironmentIncident(models.Model):
    """A run of bad deploys: from the first bad one after a good one to the next good one (if any yet)."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+", db_index=False)
    started_at = models.DateTimeField()  # the first bad deploy's finish
    restored_at = models.DateTimeField(null=True, blank=True)  # the next good deploy's finish

    class Meta:
        indexes = [models.Index(fields=["environment", "started_at"], name="insights_env_incident")]
