"""Environments as lists show them: each with its current deployment and its live jobs counted,
in a fixed number of queries whatever the number of environments (the API's list and detail)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.db.models import Count, OuterRef, Subquery

from ..models import Environment, Job, JobStatus
from .gate import LIVE_STATUSES


@dataclass
class EnvironmentSummary:
    current: Job | None = None
    # status → how many of its jobs are in it (pending_approval, waiting, queued, running)
    counts: dict[str, int] = field(default_factory=dict)


def environments_summaries(environments: list[Environment]) -> dict[uuid.UUID, EnvironmentSummary]:
    """Two queries for any number of environments: the live jobs counted by status (the live-jobs
    index), and each one's current deployment (its newest succeeded job, as environment_current)."""
    ids = [e.pk for e in environments]
    summaries = {pk: EnvironmentSummary() for pk in ids}
    if not ids:
        return summaries
    counted = (
        Job.objects.filter(environment_id__in=ids, status__in=LIVE_STATUSES)
        .order_by()
        .values_list("environment_id", "status")
        .annotate(n=Count("pk"))
    )
    for environment_id, status, n in counted:
        summaries[environment_id].counts[status] = n
    newest_succeeded = (
        Job.objects.filter(environment_id=OuterRef("pk"), status=JobStatus.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .values("pk")[:1]
    )
    current_ids = Environment.objects.filter(pk__in=ids).annotate(current=Subquery(newest_succeeded)).values("current")
    for job in Job.objects.filter(pk__in=current_ids).select_related("trigger", "org"):
        summaries[job.environment_id].current = job
    return summaries
