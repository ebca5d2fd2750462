"""How an environment gates its jobs: what a new job becomes, and moving the next one on.

The agent protocol does not change: a job an environment holds is `pending_approval` or
`waiting`, and only `queued` jobs are claimable. Every decision is taken holding the
environment's row lock (SELECT … FOR UPDATE), always before any of its jobs' rows, so two
runs, a run and a finishing job, or two finishing jobs decide one after the other and never
see the same free slot (and never deadlock on each other).

`environment_advance` is called in the transaction of everything that may free a slot or
unblock the queue: a job ending (lifecycle._finalize), approvals completing, an unlock. The
sweeper (`environments_sweep`) calls it too, so nothing stays stuck if one of those is lost.
"""

from __future__ import annotations

import fnmatch
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from deplite.errors import Conflict, Unprocessable
from orgs.actors import Actor

from ..models import Concurrency, Environment, Job, JobStatus, QueueOrder

# Claimed or about to be: what `concurrency: one` allows one of.
ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
LIVE_STATUSES = (JobStatus.PENDING_APPROVAL, JobStatus.WAITING, JobStatus.QUEUED, JobStatus.RUNNING)


def person_id(actor: Actor) -> int | None:
    """The person behind an act: the user, or the creator of the API token used."""
    if actor.user is not None:
        return actor.user.pk
    if actor.token is not None:
        return actor.token.created_by_id
    return None


def ref_allowed(environment: Environment, ref: str) -> bool:
    patterns = environment.allowed_refs or []
    return not patterns or any(fnmatch.fnmatchcase(ref, p) for p in patterns)


def environment_for_update(environment_id: uuid.UUID) -> Environment | None:
    """The environment's row, locked for the caller's transaction (a no-op lock on SQLite,
    whose IMMEDIATE transactions already run one writer at a time)."""
    return Environment.objects.select_for_update().filter(pk=environment_id).first()


@dataclass(frozen=True)
class Admission:
    """What a new job of an environment starts as."""

    status: str
    approval_expires_at: object = None
    # The environment is locked by someone else and the run asked to be recorded anyway
    # (a scheduled fire): the job is created and ends `cancelled` with this reason.
    refused_by_lock: str = ""


def job_admit(
    *, environment: Environment, requested_by_id: int | None, ref: str, record_lock: bool = False
) -> Admission:
    """Decide what a new job of `environment` starts as; the caller holds the environment's lock.

    Refuses a ref outside `allowedRefs` (422) and, unless `record_lock`, a run while another
    person holds the lock (409 `environment_locked`). One query at most: is anything ahead of it.
    """
    if not ref_allowed(environment, ref):
        patterns = ", ".join(environment.allowed_refs)
        raise Unprocessable(
            f"The environment {environment.name} only deploys refs matching {patterns}; {ref!r} does not match.",
            code="ref_not_allowed",
            details={"environment": environment.name, "ref": ref, "allowedRefs": list(environment.allowed_refs)},
        )
    now = timezone.now()
    locked_out = environment.is_locked(now) and environment.locked_by_id != requested_by_id
    if locked_out or (environment.is_locked(now) and requested_by_id is None):
        if record_lock:
            return Admission(status=JobStatus.WAITING, refused_by_lock=f"environment {environment.lock_description}")
        raise environment_locked_error(environment)
    if environment.required_approvals > 0:
        return Admission(
            status=JobStatus.PENDING_APPROVAL,
            approval_expires_at=now + timedelta(seconds=environment.approval_timeout_seconds),
        )
    if environment.concurrency == Concurrency.UNLIMITED:
        return Admission(status=JobStatus.QUEUED)
    return Admission(status=JobStatus.WAITING if _busy(environment, now) else JobStatus.QUEUED)


def environment_locked_error(environment: Environment) -> Conflict:
    since = environment.locked_at.isoformat().replace("+00:00", "Z") if environment.locked_at else None
    return Conflict(
        f"The environment {environment.name} is {environment.lock_description} (since {since}).",
        code="environment_locked",
        details={
            "environment": environment.name,
            "lockedBy": environment.locked_by_label,
            "reason": environment.lock_reason,
            "lockedAt": since,
            "expiresAt": environment.lock_expires_at.isoformat().replace("+00:00", "Z")
            if environment.lock_expires_at
            else None,
        },
    )


def _busy(environment: Environment, now) -> bool:
    """Something runs, is about to, or waits its turn ahead: a new job must wait (strict order).
    Under its holder's lock, the others' waiting jobs are held and do not count."""
    ahead = Job.objects.filter(environment_id=environment.pk, status__in=(JobStatus.WAITING, *ACTIVE_STATUSES))
    if environment.is_locked(now):
        ahead = ahead.filter(Q(status__in=ACTIVE_STATUSES) | Q(requested_by_id=environment.locked_by_id))
    return ahead.exists()


def environment_advance(*, environment: Environment) -> list[uuid.UUID]:
    """Move the environment's next waiting job(s) to `queued` if the rules let them, waking an
    agent after commit. The caller holds `environment`'s lock (environment_for_update).

    `newest` keeps only the newest waiting job: the older ones end `cancelled`, superseded.
    Returns the ids released.
    """
    from ..services import lifecycle, runs

    now = timezone.now()
    waiting = Job.objects.filter(environment_id=environment.pk, status=JobStatus.WAITING)
    if environment.queue == QueueOrder.NEWEST:
        rows = list(waiting.order_by("-created_at", "-id").values_list("id", "short_id"))
        for job_id, _ in rows[1:]:
            lifecycle.job_end_gated(job_id=job_id, error=f"superseded by #{rows[0][1]}", environment=environment)
    if environment.is_locked(now):
        waiting = (
            waiting.filter(requested_by_id=environment.locked_by_id) if environment.locked_by_id else waiting.none()
        )
    if environment.concurrency == Concurrency.ONE:
        if Job.objects.filter(environment_id=environment.pk, status__in=ACTIVE_STATUSES).exists():
            return []
        waiting = waiting.order_by("created_at", "id")[:1]
    rows = list(waiting.values_list("id", "agent_labels", "waiting_for_files"))
    released = []
    for job_id, labels, waiting_for_files in rows:
        if Job.objects.filter(pk=job_id, status=JobStatus.WAITING).update(status=JobStatus.QUEUED, queued_at=now):
            released.append(job_id)
            if not waiting_for_files:  # else the file's verification dispatches it
                runs.job_enqueue_dispatch(job_id=job_id, org_id=environment.org_id, labels=labels)
    return released
