"""Metrics of jobs (deplite.metrics), connected in TriggersConfig.ready()."""

from __future__ import annotations

from django.db.models import Count, Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from deplite import metrics

from .models import GATED_STATUSES, Job, JobStatus


def count_job_finished(sender, job_id, status: str, **kwargs) -> None:
    # Sent after commit, once per job (services.lifecycle): one small read for the source.
    source = Job.objects.filter(pk=job_id).values_list("source", flat=True).first() or "unknown"
    metrics.JOBS_FINISHED.labels(result=status, source=source).inc()


def queued_jobs_state() -> dict[str, float]:
    """Jobs waiting for an agent and the age of the oldest, and the jobs environments hold, in one query."""
    queued = Q(status=JobStatus.QUEUED)
    row = Job.objects.filter(status__in=(JobStatus.QUEUED, *GATED_STATUSES)).aggregate(
        n=Count("id", filter=queued),
        oldest=Min(Coalesce("queued_at", "created_at"), filter=queued),
        waiting=Count("id", filter=Q(status=JobStatus.WAITING)),
        pending=Count("id", filter=Q(status=JobStatus.PENDING_APPROVAL)),
    )
    oldest = row["oldest"]
    age = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
    return {
        "jobs_queued": row["n"],
        "jobs_queued_oldest_age_seconds": round(age, 3),
        "jobs_waiting": row["waiting"],
        "jobs_pending_approval": row["pending"],
    }


QUEUED_HELP = {
    "jobs_queued": "Jobs waiting for an agent.",
    "jobs_queued_oldest_age_seconds": "Age of the oldest job waiting for an agent (0 when none waits).",
    "jobs_waiting": "Jobs an environment holds: behind another deploy of it, or held by its lock.",
    "jobs_pending_approval": "Jobs waiting for their environment's approvals.",
}
