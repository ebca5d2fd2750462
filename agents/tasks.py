"""Beat: fail running jobs whose agent went silent."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from triggers import services as job_services
from triggers.models import Job, JobStatus

from . import pulse, signing
from .models import Agent


@shared_task(ignore_result=True)
def agents_reap_lost() -> int:
    """A running job whose agent has not been heard from for DEPLITE_AGENT_LOST_AFTER_SECONDS fails with `agent lost`.

    Only silence while the server could hear counts (agents.pulse): up to the web tier's latest pulse,
    and after an outage from when it was back, not from the agent's last request.
    """
    reachable_from, reachable_until = pulse.reachable_window()
    cutoff = reachable_until - timedelta(seconds=settings.DEPLITE_AGENT_LOST_AFTER_SECONDS)
    if reachable_from >= cutoff:
        return 0  # the server has not been reachable for a whole lost timeout: no silence is the agent's fault
    running = list(Job.objects.filter(status=JobStatus.RUNNING, claimed_at__lt=cutoff).values_list("id", "agent_id"))
    if not running:
        return 0
    alive = set(
        Agent.objects.filter(
            pk__in={agent_id for _, agent_id in running}, revoked_at__isnull=True, last_seen_at__gte=cutoff
        ).values_list("pk", flat=True)
    )
    failed = 0
    for job_id, agent_id in running:
        if agent_id in alive:
            continue
        # The agent filter makes this a no-op if the job changed hands or finished meanwhile.
        failed += job_services.job_fail(
            job_id=job_id,
            error=job_services.AGENT_LOST,
            from_statuses=[JobStatus.RUNNING],
            filters={"agent_id": agent_id},
        )
    return failed


@shared_task(ignore_result=True)
def agent_nonces_purge() -> int:
    """Spent nonces outside the signature window are no longer needed to refuse a replay."""
    return signing.nonces_purge()
