"""The environments as the list page and the Overview show them: each with its current
deployment, what runs, what waits and its lock."""

from __future__ import annotations

from django.db.models import Count, OuterRef, QuerySet, Subquery

from ..models import Environment, Job, JobStatus
from ..templatetags.jobs import job_ref_cell


def environment_rows(environments: QuerySet[Environment]) -> list[dict]:
    """Each of `environments` (an org-scoped queryset) with its current deployment, what runs, what waits and its
    lock: three queries whatever their number (the Overview shows them too)."""
    current = (
        Job.objects.filter(environment=OuterRef("pk"), status=JobStatus.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .values("id")[:1]
    )
    environments = list(environments.annotate(current_id=Subquery(current)).order_by("name"))
    counts: dict[tuple, int] = {}
    ids = [e.pk for e in environments]
    live = (JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.WAITING, JobStatus.PENDING_APPROVAL)
    for row in (
        Job.objects.filter(environment_id__in=ids, status__in=live)
        .values("environment_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[(row["environment_id"], row["status"])] = row["n"]
    current_ids = [e.current_id for e in environments if e.current_id]
    jobs = {j.pk: j for j in Job.objects.filter(pk__in=current_ids).select_related("trigger")} if current_ids else {}
    rows = []
    for environment in environments:
        job = jobs.get(environment.current_id)

        def count(status: str, pk=environment.pk) -> int:
            return counts.get((pk, status), 0)

        rows.append(
            {
                "environment": environment,
                "current": job,
                "current_ref": job_ref_cell(job) if job else None,
                "running": count(JobStatus.RUNNING) + count(JobStatus.QUEUED),
                "waiting": count(JobStatus.WAITING),
                "pending": count(JobStatus.PENDING_APPROVAL),
                "locked": environment.is_locked(),
            }
        )
    return rows
