"""Writes for agents: create, revoke, rotate the secret, heartbeat."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from deplite.errors import Conflict
from orgs.actors import Actor
from orgs.models import Organization
from orgs.services import audit_record
from triggers import services as job_services
from triggers.models import Job, JobStatus

from . import signing
from .models import Agent


def agent_create(*, org: Organization, actor: Actor, name: str, labels: list[str]) -> tuple[Agent, str]:
    """Register an agent; returns the row and its secret, which is shown this once."""
    secret = signing.generate_secret()
    with transaction.atomic():
        agent = Agent.objects.create(
            org=org, name=name, labels=sorted(set(labels)), secret=secret, created_by=actor.user
        )
        audit_record(
            org=org, actor=actor, action="agent.created", target=agent, data={"name": name, "labels": agent.labels}
        )
    return agent, secret


def agent_rotate_secret(*, agent: Agent, actor: Actor) -> tuple[Agent, str]:
    """A new secret; the old one stops working at once."""
    if agent.revoked_at is not None:
        raise Conflict("This agent is revoked.", code="agent_revoked")
    secret = signing.generate_secret()
    with transaction.atomic():
        agent.secret = secret
        agent.save(update_fields=["secret"])
        audit_record(org=agent.org, actor=actor, action="agent.secret_rotated", target=agent, data={"name": agent.name})
    return agent, secret


def agent_revoke(*, agent: Agent, actor: Actor) -> Agent:
    """Revoke an agent: its signatures stop verifying and the jobs it was running fail."""
    with transaction.atomic():
        if Agent.objects.filter(pk=agent.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
            audit_record(org=agent.org, actor=actor, action="agent.revoked", target=agent, data={"name": agent.name})
            for job_id in Job.objects.filter(agent_id=agent.pk, status=JobStatus.RUNNING).values_list("id", flat=True):
                job_services.job_fail(
                    job_id=job_id,
                    error="agent revoked",
                    from_statuses=[JobStatus.RUNNING],
                    filters={"agent_id": agent.pk},
                )
    agent.refresh_from_db()
    return agent


def agent_heartbeat(
    *,
    agent: Agent,
    hostname: str,
    version: str,
    workflows: list[str],
    running_jobs: list[uuid.UUID] | None = None,
    signed_at: datetime | None = None,
) -> Agent:
    """Record the agent's host; when it lists the jobs it holds (`running_jobs`), take back the others.

    `running_jobs` None means the agent did not say (an older agent, or `deplite-agent check`): nothing
    is taken back. `signed_at` is the heartbeat's signed timestamp (when the agent built the list).
    """
    now = timezone.now()
    Agent.objects.filter(pk=agent.pk).update(hostname=hostname, version=version, workflows=workflows, last_seen_at=now)
    agent.hostname, agent.version, agent.workflows, agent.last_seen_at = hostname, version, workflows, now
    if running_jobs is not None:
        job_services.job_recover_unheld(
            org=agent.org,
            agent_id=agent.pk,
            agent_name=agent.name,
            held_job_ids=running_jobs,
            signed_at=signed_at or now,
        )
    return agent


def agent_record_version(*, agent: Agent, version: str) -> Agent:
    """Record the version an agent's request names, when it changed (a refused agent sends no heartbeat)."""
    if agent.version != version:
        Agent.objects.filter(pk=agent.pk).update(version=version)
        agent.version = version
    return agent
