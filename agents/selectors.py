"""Reads about agents that other pages need (which are online, what each one runs now)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from triggers.models import Job, JobStatus

from .models import Agent


def online_agent_labels(org_id: uuid.UUID) -> list[set[str]]:
    """The label set of each online agent of the org (online as `Agent.is_online` says)."""
    since = timezone.now() - timedelta(seconds=settings.DEPLITE_AGENT_OFFLINE_AFTER_SECONDS)
    rows = Agent.objects.filter(org_id=org_id, revoked_at__isnull=True, last_seen_at__gt=since)
    return [set(labels or []) for labels in rows.values_list("labels", flat=True)]


def current_jobs(agents: list[Agent]) -> dict[uuid.UUID, Job]:
    """The running job of each of these agents (one query), by agent id."""
    if not agents:
        return {}
    jobs = Job.objects.filter(
        org_id=agents[0].org_id, status=JobStatus.RUNNING, agent_id__in=[a.pk for a in agents]
    ).only("id", "short_id", "trigger_name", "agent_id", "org_id")
    return {job.agent_id: job for job in jobs.order_by("claimed_at")}
