"""Environments' reads: the current deployment, the queue with why each job waits, the history."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from ..models import Environment, Job, JobStatus
from ..templatetags.jobs import format_duration
from .gate import ACTIVE_STATUSES


def environment_deployments_succeeded(environment: Environment) -> QuerySet[Job]:
    """Its succeeded jobs, newest first: the first is what is deployed now."""
    return (
        Job.objects.filter(environment=environment, status=JobStatus.SUCCEEDED)
        .select_related("trigger")
        .order_by("-finished_at", "-id")
    )


def environment_current(environment: Environment) -> Job | None:
    return environment_deployments_succeeded(environment).first()


def environment_history(environment: Environment) -> QuerySet[Job]:
    """Every job of the environment, newest first (keyset paginated by the callers on created_at, id)."""
    return Job.objects.filter(environment=environment).order_by("-created_at", "-id")


@dataclass(frozen=True)
class QueueEntry:
    job: Job
    position: int | None  # 1 = next; None for the running, queued and pending-approval jobs
    reason: str


def environment_queue(environment: Environment) -> list[QueueEntry]:
    """What runs, then what waits in the order it will run (with why), then what awaits approval."""
    now = timezone.now()
    live = list(
        Job.objects.filter(
            environment=environment,
            status__in=(JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.WAITING, JobStatus.PENDING_APPROVAL),
        ).order_by("created_at", "id")
    )
    active = [j for j in live if j.status in ACTIVE_STATUSES]
    waiting = [j for j in live if j.status == JobStatus.WAITING]
    pending = [j for j in live if j.status == JobStatus.PENDING_APPROVAL]
    entries = [QueueEntry(job=j, position=None, reason="") for j in active]
    for position, job in enumerate(waiting, start=1):
        entries.append(QueueEntry(job=job, position=position, reason=_reason(environment, job, active, waiting, now)))
    entries += [QueueEntry(job=j, position=None, reason="") for j in pending]
    return entries


def waiting_reason(job: Job) -> str:
    """Why a waiting job waits, in words ("behind #a1b2c3 (running for 2m)", "locked by …"); "" otherwise."""
    if job.status != JobStatus.WAITING or job.environment_id is None:
        return ""
    environment = job.environment
    now = timezone.now()
    live = list(
        Job.objects.filter(environment_id=job.environment_id, status__in=(*ACTIVE_STATUSES, JobStatus.WAITING))
        .order_by("created_at", "id")
        .only("id", "short_id", "status", "claimed_at", "created_at", "requested_by_id")
    )
    active = [j for j in live if j.status in ACTIVE_STATUSES]
    waiting = [j for j in live if j.status == JobStatus.WAITING]
    return _reason(environment, job, active, waiting, now)


def _reason(environment: Environment, job: Job, active: list[Job], waiting: list[Job], now) -> str:
    if environment.is_locked(now) and job.requested_by_id != environment.locked_by_id:
        return environment.lock_description
    if active:
        head = active[0]
        if head.status == JobStatus.RUNNING and head.claimed_at:
            return f"behind #{head.short_id} (running for {format_duration(now - head.claimed_at)})"
        return f"behind #{head.short_id} (queued)"
    ahead = [w for w in waiting if (w.created_at, str(w.id)) < (job.created_at, str(job.id))]
    if ahead:
        return f"behind #{ahead[-1].short_id} (waiting)"
    return "next"
