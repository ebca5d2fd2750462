"""A trigger's insights: the duration of its last runs, its success rate and which step takes the time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.db.models.functions import Coalesce

from triggers.models import Job, JobStatus, JobStep, StepStatus, Trigger

from ..stats import percentile

#: How many of a trigger's latest runs the chart and the numbers cover.
HISTORY = 100
RAN = (JobStatus.SUCCEEDED, JobStatus.FAILED)


@dataclass(frozen=True)
class RunPoint:
    job_id: uuid.UUID
    short_id: str
    status: str
    finished_at: datetime
    duration_seconds: float

    @property
    def failed(self) -> bool:
        return self.status == JobStatus.FAILED


@dataclass(frozen=True)
class StepTime:
    name: str
    runs: int
    failures: int
    mean_seconds: float
    share: float  # of the time all steps took, 0–1


@dataclass(frozen=True)
class TriggerInsights:
    runs: list[RunPoint]  # oldest first
    success_rate: float | None
    p50_seconds: float | None
    p95_seconds: float | None
    steps: list[StepTime]  # in workflow order

    @property
    def failures(self) -> int:
        return sum(1 for run in self.runs if run.failed)


def trigger_insights(*, trigger: Trigger) -> TriggerInsights:
    """The trigger's last HISTORY runs that ran to an end (succeeded or failed; a cancelled job is
    a person's decision, not a measure of the workflow) and their steps: two queries."""
    # The duration comes back as an interval, computed by the database (Django loads each timestamp in
    # Python: three a run were a third of this answer).
    rows = (
        Job.objects.filter(trigger=trigger, status__in=RAN, finished_at__isnull=False)
        .order_by("-finished_at")
        .annotate(
            took=ExpressionWrapper(
                F("finished_at") - Coalesce("started_at", "claimed_at", "finished_at"), output_field=DurationField()
            )
        )
        .values_list("id", "short_id", "status", "finished_at", "took")[:HISTORY]
    )
    runs = [
        RunPoint(job_id, short_id, status, finished_at, max(took.total_seconds(), 0.0))
        for job_id, short_id, status, finished_at, took in rows
    ]
    runs.reverse()
    durations = [run.duration_seconds for run in runs]
    succeeded = sum(1 for run in runs if not run.failed)
    return TriggerInsights(
        runs=runs,
        success_rate=succeeded / len(runs) if runs else None,
        p50_seconds=percentile(durations, 0.5),
        p95_seconds=percentile(durations, 0.95),
        steps=_step_times([run.job_id for run in runs]),
    )


def _step_times(job_ids: list[uuid.UUID]) -> list[StepTime]:
    """Per step name over these jobs: how often it ran, failed, and its mean duration (one query).
    Only steps the agent timed (started and finished); none when the workflow's steps are unknown."""
    if not job_ids:
        return []
    rows = list(
        JobStep.objects.filter(job_id__in=job_ids, started_at__isnull=False, finished_at__isnull=False)
        .values("name")
        .annotate(
            runs=Count("id"),
            failures=Count("id", filter=Q(status=StepStatus.FAILED)),
            position=Min("index"),
            total=Sum(F("finished_at") - F("started_at")),
        )
        .order_by("position", "name")
    )
    grand = sum(row["total"].total_seconds() for row in rows) or 1.0
    return [
        StepTime(
            name=row["name"],
            runs=row["runs"],
            failures=row["failures"],
            mean_seconds=row["total"].total_seconds() / row["runs"],
            share=row["total"].total_seconds() / grand,
        )
        for row in rows
    ]
