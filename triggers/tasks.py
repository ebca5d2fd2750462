"""Celery tasks for jobs: dispatch (wake agents), the queued-job sweeper, the reaper, key purge, and the
schedules' tick.

Each takes ids, re-reads rows and is safe to run twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from . import services, wakeups
from .models import IdempotencyKey, Job, JobStatus
from .schedules.models import ScheduleFire
from .schedules.services import schedules_fire_due

logger = logging.getLogger(__name__)

# A queued job this old whose agents were not woken (lost task, Redis hiccup) is re-announced.
SWEEP_AFTER = timedelta(seconds=10)
DEFAULT_TIMEOUT_MINUTES = 60


@shared_task(
    autoretry_for=(redis.RedisError,), retry_backoff=True, retry_jitter=True, max_retries=3, ignore_result=True
)
def job_dispatch(job_id: str) -> int:
    """Wake one waiting agent that can take a new job. A job no longer queued needs no wake-up."""
    job = (
        Job.objects.filter(pk=job_id, status=JobStatus.QUEUED, waiting_for_files=False)
        .only("org_id", "agent_labels")
        .first()
    )
    if job is None:
        return 0
    return wakeups.publish_jobs_available(org_id=job.org_id, labels=job.agent_labels)


# One sweep re-announces at most this many claimable jobs (each wakes one agent).
SWEEP_LIMIT = 500


@shared_task(ignore_result=True)
def jobs_sweep_queued() -> int:
    """Beat: re-publish one wake-up per claimable job still queued after SWEEP_AFTER.

    One per job, so each wakes one agent that can take it (a lost wake-up, a waiter that
    left without passing it on). Returns the number of orgs concerned.
    """
    cutoff = timezone.now() - SWEEP_AFTER
    waiting = (
        Job.objects.filter(status=JobStatus.QUEUED, waiting_for_files=False)
        .filter(Q(queued_at__lt=cutoff) | Q(queued_at__isnull=True, created_at__lt=cutoff))
        .order_by("created_at")
        .values_list("org_id", "agent_labels")[:SWEEP_LIMIT]
    )
    org_ids = set()
    for org_id, labels in waiting:
        org_ids.add(org_id)
        try:
            wakeups.publish_jobs_available(org_id=org_id, labels=labels)
        except redis.RedisError:
            logger.warning("Could not publish a wake-up for org %s; next sweep retries.", org_id)
    return len(org_ids)


@shared_task(ignore_result=True)
def jobs_reap() -> dict:
    """Beat: fail running jobs past their timeout (plus grace) and queued jobs nobody claimed in time."""
    now = timezone.now()
    grace = timedelta(seconds=settings.DEPLITE_JOB_TIMEOUT_GRACE_SECONDS)
    timed_out = 0
    running = Job.objects.filter(status=JobStatus.RUNNING).values_list(
        "id", "started_at", "claimed_at", "timeout_minutes"
    )
    for job_id, started_at, claimed_at, timeout_minutes in running.iterator():
        since = started_at or claimed_at
        minutes = timeout_minutes or DEFAULT_TIMEOUT_MINUTES
        if since is not None and now > since + timedelta(minutes=minutes) + grace:
            timed_out += services.job_fail(
                job_id=job_id,
                error=f"timeout exceeded: the job ran longer than {minutes} minutes",
                from_statuses=[JobStatus.RUNNING],
            )
    max_age = timedelta(seconds=settings.DEPLITE_QUEUED_JOB_MAX_AGE_SECONDS)
    expired = 0
    # A queued job's age counts from when it became claimable: a deploy that waited its turn in its
    # environment for an hour is not expired the moment it is released.
    oldest = now - max_age
    stale = Job.objects.filter(status=JobStatus.QUEUED).filter(
        Q(queued_at__lt=oldest) | Q(queued_at__isnull=True, created_at__lt=oldest)
    )
    for job_id in stale.values_list("id", flat=True):
        expired += services.job_fail(
            job_id=job_id,
            error=f"expired: no agent claimed this job within {_human(max_age)}",
            from_statuses=[JobStatus.QUEUED],
        )
    return {"timedOut": timed_out, "expired": expired}


@shared_task(ignore_result=True)
def environments_sweep() -> dict:
    """Beat: expired environment locks unlock, approvals past their time end their job, waiting
    jobs whose release was lost move on (triggers.environments.services.environments_sweep)."""
    from .environments.services import environments_sweep as sweep

    return sweep()


@shared_task(ignore_result=True)
def idempotency_keys_purge() -> int:
    """Beat: forget Idempotency-Keys after 24 hours."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - services.IDEMPOTENCY_KEY_TTL).delete()
    return deleted


@shared_task(ignore_result=True)
def schedules_tick() -> int:
    """Beat: fire the schedules whose time has come; the number of jobs made. The database decides
    what is due and what already fired, so a late, repeated or concurrent tick fires nothing twice."""
    return schedules_fire_due()


# A fire row only guards a fire against a concurrent tick; next_fire_at never goes back, so old ones can go.
SCHEDULE_FIRE_RETENTION = timedelta(days=30)


@shared_task(ignore_result=True)
def schedule_fires_purge() -> int:
    """Beat: forget fire rows older than SCHEDULE_FIRE_RETENTION (the schedule keeps its last fire and job)."""
    deleted, _ = ScheduleFire.objects.filter(created_at__lt=timezone.now() - SCHEDULE_FIRE_RETENTION).delete()
    return deleted


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"
