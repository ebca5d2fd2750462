"""Celery tasks for jobs: dispatch (wake agents), the queued-job sweeper, the reaper, key purge.

Each takes ids, re-reads rows and is safe to run twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import services, wakeups
from .models import IdempotencyKey, Job, JobStatus

logger = logging.getLogger(__name__)

# A queued job this old whose agents were not woken (lost task, Redis hiccup) is re-announced.
SWEEP_AFTER = timedelta(seconds=10)
DEFAULT_TIMEOUT_MINUTES = 60


@shared_task(
    autoretry_for=(redis.RedisError,), retry_backoff=True, retry_jitter=True, max_retries=3, ignore_result=True
)
def job_dispatch(job_id: str) -> int:
    """Wake the waiting agents of a new job's org. A job no longer queued needs no wake-up."""
    job = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED, waiting_for_files=False).only("org_id").first()
    if job is None:
        return 0
    return wakeups.publish_jobs_available(org_id=job.org_id)


@shared_task(ignore_result=True)
def jobs_sweep_queued() -> int:
    """Beat: re-publish a wake-up for every org that still has claimable jobs waiting."""
    cutoff = timezone.now() - SWEEP_AFTER
    org_ids = set(
        Job.objects.filter(status=JobStatus.QUEUED, waiting_for_files=False, created_at__lt=cutoff).values_list(
            "org_id", flat=True
        )
    )
    for org_id in org_ids:
        try:
            wakeups.publish_jobs_available(org_id=org_id)
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
    for job_id in Job.objects.filter(status=JobStatus.QUEUED, created_at__lt=now - max_age).values_list(
        "id", flat=True
    ):
        expired += services.job_fail(
            job_id=job_id,
            error=f"expired: no agent claimed this job within {_human(max_age)}",
            from_statuses=[JobStatus.QUEUED],
        )
    return {"timedOut": timed_out, "expired": expired}


@shared_task(ignore_result=True)
def idempotency_keys_purge() -> int:
    """Beat: forget Idempotency-Keys after 24 hours."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - services.IDEMPOTENCY_KEY_TTL).delete()
    return deleted


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"
