"""The claim: an agent's long poll takes the oldest job it can run, exclusively."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from django.db import connection
from django.utils import timezone

from ..models import Job, JobStatus

_CLAIM_SQL = """
UPDATE triggers_job SET status = %s, agent_id = %s, agent_name = %s, claimed_at = %s
WHERE id = (
    SELECT id FROM triggers_job
    WHERE org_id = %s AND status = %s AND NOT waiting_for_files AND agent_labels <@ %s::jsonb
    ORDER BY created_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
) AND status = %s
RETURNING id
"""


def job_claim_next(*, org_id: uuid.UUID, agent_id: uuid.UUID, agent_name: str, agent_labels: list[str]) -> Job | None:
    """Give the oldest claimable job of the org to this agent, or None.

    Claimable: queued, not waiting for input files, and every label of its trigger is
    among the agent's. On PostgreSQL this is one statement whose row lock skips rows
    another claim holds, so two agents never get the same job and never wait on each other.
    """
    now = timezone.now()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM_SQL,
                [
                    JobStatus.RUNNING,
                    agent_id,
                    agent_name,
                    now,
                    org_id,
                    JobStatus.QUEUED,
                    json.dumps(sorted(set(agent_labels))),
                    JobStatus.QUEUED,
                ],
            )
            row = cursor.fetchone()
        job_id = row[0] if row else None
    else:
        job_id = _claim_portable(
            org_id=org_id, agent_id=agent_id, agent_name=agent_name, labels=set(agent_labels), now=now
        )
    if job_id is None:
        return None
    return Job.objects.select_related("org", "trigger").get(pk=job_id)


def _claim_portable(*, org_id, agent_id, agent_name, labels: set[str], now: datetime) -> uuid.UUID | None:
    # SQLite has no JSON containment operator nor SKIP LOCKED; it serialises writers, so
    # the conditional update below is what makes the claim exclusive.
    candidates = Job.objects.filter(org_id=org_id, status=JobStatus.QUEUED, waiting_for_files=False).order_by(
        "created_at", "id"
    )
    for job_id, job_labels in candidates.values_list("id", "agent_labels")[:200]:
        if not set(job_labels or []) <= labels:
            continue
        taken = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, agent_id=agent_id, agent_name=agent_name, claimed_at=now
        )
        if taken:
            return job_id
    return None
