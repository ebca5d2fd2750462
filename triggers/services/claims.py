"""The claim: an agent's long poll takes the oldest job it can run, exclusively."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from datetime import datetime
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from deplite import metrics

from ..models import Job, JobStatus

JOB_TOKEN_PREFIX = "djt_"  # noqa: S105 (the visible prefix of job tokens, not a secret)


def job_token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


_CLAIM_SQL = """
UPDATE triggers_job SET status = %s, agent_id = %s, agent_name = %s, claimed_at = %s, job_token_hash = %s
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

    The claim issues the job's own credential: the returned job carries it once as
    `job.job_token` (only its hash is stored), for the claim answer.
    """
    now = timezone.now()
    token = JOB_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_hash = job_token_hash(token)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM_SQL,
                [
                    JobStatus.RUNNING,
                    agent_id,
                    agent_name,
                    now,
                    token_hash,
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
            org_id=org_id,
            agent_id=agent_id,
            agent_name=agent_name,
            labels=set(agent_labels),
            now=now,
            token_hash=token_hash,
        )
    if job_id is None:
        return None
    job = Job.objects.select_related("org", "trigger").get(pk=job_id)
    job.job_token = token
    wait = max((job.claimed_at - (job.queued_at or job.created_at)).total_seconds(), 0.0)
    transaction.on_commit(partial(metrics.JOBS_QUEUE_WAIT_SECONDS.observe, wait))
    return job


def job_for_token(raw: str) -> Job | None:
    """The running job whose credential `raw` is, or None (unknown, or the job is no longer running)."""
    if not raw.startswith(JOB_TOKEN_PREFIX) or len(raw) > 200:
        return None
    return (
        Job.objects.select_related("org")
        .filter(job_token_hash=job_token_hash(raw), status=JobStatus.RUNNING)
        .exclude(job_token_hash="")
        .first()
    )


def _claim_portable(
    *, org_id, agent_id, agent_name, labels: set[str], now: datetime, token_hash: str
) -> uuid.UUID | None:
    # SQLite has no JSON containment operator nor SKIP LOCKED; it serialises writers, so
    # the conditional update below is what makes the claim exclusive.
    candidates = Job.objects.filter(org_id=org_id, status=JobStatus.QUEUED, waiting_for_files=False).order_by(
        "created_at", "id"
    )
    for job_id, job_labels in candidates.values_list("id", "agent_labels")[:200]:
        if not set(job_labels or []) <= labels:
            continue
        taken = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING,
            agent_id=agent_id,
            agent_name=agent_name,
            claimed_at=now,
            job_token_hash=token_hash,
        )
        if taken:
            return job_id
    return None
