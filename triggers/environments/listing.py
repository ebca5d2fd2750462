"""The environments as the list page and the Overview show them: each with its current
deployment, what runs, what waits and its lock."""

from __future__ import annotations

from django.db.models import QuerySet

from ..models import Environment, JobStatus
from ..templatetags.jobs import job_ref_cell
from .overview import environments_summaries


def environment_rows(environments: QuerySet[Environment]) -> list[dict]:
    """Each of `environments` (an org-scoped queryset) with its current deployment, what runs,
    what waits and its lock: the API's summaries (a fixed number of queries whatever their number)."""
    environments = list(environments.order_by("name"))
    summaries = environments_summaries(environments)
    rows = []
    for environment in environments:
        summary = summaries[environment.pk]
        counts, job = summary.counts, summary.current
        rows.append(
            {
                "environment": environment,
                "current": job,
                "current_ref": job_ref_cell(job) if job else None,
                "running": counts.get(JobStatus.RUNNING, 0) + counts.get(JobStatus.QUEUED, 0),
                "waiting": counts.get(JobStatus.WAITING, 0),
                "pending": counts.get(JobStatus.PENDING_APPROVAL, 0),
                "locked": environment.is_locked(),
            }
        )
    return rows
