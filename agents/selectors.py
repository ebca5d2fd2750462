"""Reads about agents: which are online and what each one runs now (for other pages), and the
download URL of a file an agent or a running job may fetch (for the agent protocol)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from deplite.errors import NotFound
from storage import selectors as storage_selectors
from storage import services as storage_services
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


def agents_online_state() -> dict[str, float]:
    """How many agents (of every org) were seen recently: the agents_online gauge."""
    since = timezone.now() - timedelta(seconds=settings.DEPLITE_AGENT_OFFLINE_AFTER_SECONDS)
    return {"agents_online": Agent.objects.filter(revoked_at__isnull=True, last_seen_at__gt=since).count()}


def _file_pk(file_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(file_id))
    except ValueError:
        raise NotFound("File not found.") from None


def agent_file_download_url(*, agent: Agent, file_id: str) -> dict:
    """A presigned GET for one of the agent's org's available files (Conflict otherwise)."""
    return _download_url(org=agent.org, pk=_file_pk(file_id))


def job_file_download_url(*, job: Job, file_id: str) -> dict:
    """A presigned GET for one of a running job's input files; any other file is a 404."""
    pk = _file_pk(file_id)
    if str(pk) not in {str(f.get("fileId")) for f in job.input_files or []}:
        raise NotFound("File not found.")
    return _download_url(org=job.org, pk=pk)


def _download_url(*, org, pk: uuid.UUID) -> dict:
    stored = storage_selectors.file_get(org=org, file_id=pk)
    if stored is None:
        raise NotFound("File not found.")
    url, expires_in = storage_services.file_download_url(file=stored)
    return {"download_url": url, "expires_in_seconds": expires_in, "file_name": stored.file_name, "size": stored.size}
