"""Writes for triggers and jobs: the run endpoint's job creation (with Idempotency-Key),
the claim, agent events, finishing, cancelling and the reaper's failures.

Every move of a job into a final state goes through `_finalize`, a conditional update
from the states it may leave: whoever wins that update sends `job_finished` after commit,
so the signal fires exactly once per job whoever (agent, user, reaper) finishes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from kombu.exceptions import KombuError

from deplite.api.errors import Conflict, Unprocessable
from orgs.models import Organization
from orgs.scoping import Actor
from orgs.services import audit_record

from . import input_files
from .models import (
    FINAL_STATUSES,
    IdempotencyKey,
    Job,
    JobLogChunk,
    JobStatus,
    JobStep,
    NotifyOn,
    StepStatus,
    Trigger,
)
from .signals import job_finished

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


# --- triggers ---------------------------------------------------------------------------------


def trigger_create(*, org: Organization, actor: Actor, **fields: Any) -> Trigger:
    """Create a trigger from validated fields (snake_case model field names)."""
    try:
        with transaction.atomic():
            trigger = Trigger.objects.create(org=org, created_by=actor.user, **fields)
            audit_record(
                org=org,
                actor=actor,
                action="trigger.created",
                target=trigger,
                data={"name": trigger.name, "type": trigger.type, "workflow": trigger.workflow},
            )
    except IntegrityError:
        raise _keyword_taken() from None
    return trigger


def trigger_update(*, trigger: Trigger, actor: Actor, **fields: Any) -> Trigger:
    changed = {k: v for k, v in fields.items() if getattr(trigger, k) != v}
    if not changed:
        return trigger
    try:
        with transaction.atomic():
            for name, value in changed.items():
                setattr(trigger, name, value)
            trigger.save()
            audit_record(
                org=trigger.org, actor=actor, action="trigger.updated", target=trigger, data={"fields": sorted(changed)}
            )
    except IntegrityError:
        trigger.refresh_from_db()
        raise _keyword_taken() from None
    return trigger


def trigger_delete(*, trigger: Trigger, actor: Actor) -> None:
    """Delete a trigger. Its jobs stay (they carry the trigger's name and workflow)."""
    with transaction.atomic():
        audit_record(
            org=trigger.org, actor=actor, action="trigger.deleted", target=trigger, data={"name": trigger.name}
        )
        trigger.delete()


def _keyword_taken() -> Conflict:
    return Conflict(
        "Another trigger already uses this keyword in this chat channel.",
        code="chat_keyword_taken",
        details={"fields": {"chatKeyword": ["already used in this channel"]}},
    )


# --- the run endpoint ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    status: int
    body: dict
    replayed: bool
    job_id: uuid.UUID | None


def run_request_hash(*, ref: str | None, params: dict | None) -> str:
    """Fingerprint of what was asked, to tell a retry from a different request under the same key."""
    canonical = json.dumps({"ref": ref, "params": params}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_response_body(job: Job) -> dict:
    return {
        "jobId": str(job.id),
        "shortId": job.short_id,
        "status": job.status,
        "ref": job.ref,
        "params": job.params,
        "url": job.url,
    }


def trigger_run(
    *,
    trigger: Trigger,
    actor: Actor,
    source: str,
    ref: str | None,
    params: dict[str, str],
    idempotency_key: str | None = None,
    request_hash: str = "",
) -> RunResult:
    """Create a queued job for `trigger` (the run endpoint and chat commands).

    With an idempotency key, the first successful answer is stored with the job in one
    transaction; a retry (or a concurrent twin, which waits on the key's unique index)
    gets that answer back, a different request under the same key a 422.
    """
    if idempotency_key is not None:
        stored = _idempotency_lookup(trigger=trigger, key=idempotency_key)
        if stored is not None:
            return _replay(stored, request_hash)
    if not trigger.enabled:
        raise Conflict("This trigger is disabled.", code="trigger_disabled")
    files, waiting = input_files.input_files_resolve(org=trigger.org, params=params)
    try:
        with transaction.atomic():
            key_row = None
            if idempotency_key is not None:
                # Taken first, so a concurrent twin blocks here until this transaction ends.
                IdempotencyKey.objects.filter(
                    trigger=trigger, key=idempotency_key, created_at__lt=timezone.now() - IDEMPOTENCY_KEY_TTL
                ).delete()
                key_row = IdempotencyKey.objects.create(
                    org=trigger.org,
                    trigger=trigger,
                    key=idempotency_key,
                    request_hash=request_hash,
                    response_status=202,
                    response_body={},
                )
            job = Job(
                org=trigger.org,
                trigger=trigger,
                trigger_name=trigger.name,
                workflow=trigger.workflow,
                agent_labels=list(trigger.agent_labels),
                ref=ref if ref else trigger.default_ref,
                params=params,
                input_files=files,
                waiting_for_files=waiting,
                source=source,
                actor_kind=actor.kind,
                actor_label=actor.label[:255],
                notify_provider=trigger.notify_provider,
                notify_team_id=trigger.notify_team_id,
                notify_channel_id=trigger.notify_channel_id,
                notify_on=trigger.notify_on if trigger.notify_provider else NotifyOn.NONE,
            )
            job.save(force_insert=True)
            body = run_response_body(job)
            if key_row is not None:
                key_row.response_body = body
                key_row.job = job
                key_row.save(update_fields=["response_body", "job"])
            audit_record(
                org=trigger.org,
                actor=actor,
                action="job.created",
                target=job,
                data={"trigger": trigger.name, "shortId": job.short_id, "ref": job.ref, "source": source},
            )
            if not waiting:
                transaction.on_commit(partial(job_enqueue_dispatch, job_id=job.id), robust=True)
    except IntegrityError:
        if idempotency_key is None:
            raise
        stored = _idempotency_lookup(trigger=trigger, key=idempotency_key)
        if stored is not None:
            return _replay(stored, request_hash)
        raise Conflict(
            "A request with this Idempotency-Key is still being processed. Retry shortly.",
            code="idempotency_key_in_use",
        ) from None
    return RunResult(status=202, body=body, replayed=False, job_id=job.id)


def _idempotency_lookup(*, trigger: Trigger, key: str) -> IdempotencyKey | None:
    return IdempotencyKey.objects.filter(
        trigger=trigger, key=key, created_at__gte=timezone.now() - IDEMPOTENCY_KEY_TTL
    ).first()


def _replay(stored: IdempotencyKey, request_hash: str) -> RunResult:
    if stored.request_hash != request_hash:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request body.", code="idempotency_key_reused"
        )
    return RunResult(status=stored.response_status, body=stored.response_body, replayed=True, job_id=stored.job_id)


def job_enqueue_dispatch(*, job_id: uuid.UUID) -> None:
    """Ask a worker to wake the org's waiting agents. Runs after commit.

    A broker that is down or slow must not turn an accepted job into an error: the job
    row is committed, waiting agents re-check on their own and the sweeper re-publishes.
    """
    from .tasks import job_dispatch

    try:
        job_dispatch.apply_async(args=[str(job_id)], retry=False)
    except (KombuError, redis.RedisError, OSError):
        logger.warning("Could not enqueue the dispatch of job %s; the sweeper will wake agents.", job_id)


# --- the agent side: claim, events, finish ------------------------------------------------------


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


_LOG_MARKER = (
    "\n[deplite] Log truncated: the output of this job passed the limit of {limit} bytes; the rest was dropped.\n"
)


def job_record_events(*, job: Job, events: list[dict]) -> tuple[int, bool]:
    """Apply an agent's events to a running job it holds. Returns (acceptedThrough, cancelRequested).

    Idempotent by sequence number: events at or below the last accepted seq are resends
    and ignored. A job that is already final answers "cancel" so the agent stops.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status != JobStatus.RUNNING:
            return job.last_event_seq, True
        fresh: dict[int, dict] = {}
        for event in events:
            if event["seq"] > job.last_event_seq:
                fresh.setdefault(event["seq"], event)
        if not fresh:
            return job.last_event_seq, job.cancel_requested
        ordered = [fresh[s] for s in sorted(fresh)]
        steps: dict[int, JobStep] | None = None
        touched: dict[int, JobStep] = {}
        chunks: list[JobLogChunk] = []
        limit = settings.DEPLITE_JOB_LOG_MAX_BYTES
        for event in ordered:
            kind, at = event["type"], event.get("at") or timezone.now()
            if kind == "job_started":
                job.started_at = job.started_at or at
                if event.get("timeoutMinutes"):
                    # Workflows may say `timeout-minutes: 0.5`; the reaper works in whole
                    # minutes (plus grace), so round up rather than cut a job short.
                    job.timeout_minutes = math.ceil(event["timeoutMinutes"])
            elif kind in ("step_started", "step_finished"):
                if steps is None:
                    steps = {s.index: s for s in JobStep.objects.filter(job=job)}
                index = event["step"]
                step = steps.get(index) or JobStep(
                    org_id=job.org_id, job=job, index=index, name=event.get("name") or ""
                )
                steps[index] = touched[index] = step
                if event.get("name"):
                    step.name = event["name"][:200]
                if kind == "step_started":
                    step.status = StepStatus.RUNNING
                    step.started_at = step.started_at or at
                else:
                    step.status = event["status"]
                    step.exit_code = event.get("exitCode")
                    step.finished_at = at
            elif kind == "log" and not job.log_truncated:
                data: str = event["data"]
                size = len(data.encode())
                room = limit - job.log_bytes
                if size > room:
                    head = data.encode()[: max(room, 0)].decode(errors="ignore")
                    for text in (head, _LOG_MARKER.format(limit=limit)):
                        if text:
                            job.log_seq += 1
                            chunks.append(
                                JobLogChunk(
                                    org_id=job.org_id,
                                    job=job,
                                    seq=job.log_seq,
                                    step=event.get("step"),
                                    data=text,
                                    at=at,
                                )
                            )
                    job.log_bytes += len(head.encode())
                    job.log_truncated = True
                else:
                    job.log_seq += 1
                    job.log_bytes += size
                    chunks.append(
                        JobLogChunk(
                            org_id=job.org_id, job=job, seq=job.log_seq, step=event.get("step"), data=data, at=at
                        )
                    )
        for step in touched.values():
            step.save()
        if chunks:
            JobLogChunk.objects.bulk_create(chunks)
        job.last_event_seq = max(fresh)
        job.save(
            update_fields=[
                "last_event_seq",
                "started_at",
                "timeout_minutes",
                "log_seq",
                "log_bytes",
                "log_truncated",
            ]
        )
        return job.last_event_seq, job.cancel_requested


def job_finish(*, job: Job, status: str, exit_code: int | None, error: str | None) -> Job:
    """The agent's final report. Repeating the same report is harmless; a different one is a 409."""
    if status == JobStatus.FAILED and not error:
        error = f"exited with code {exit_code}" if exit_code is not None else "failed"
    elif status == JobStatus.CANCELLED and not error:
        error = "cancelled"
    with transaction.atomic():
        finished = _finalize(
            job_id=job.pk,
            from_statuses=[JobStatus.RUNNING],
            status=status,
            exit_code=exit_code,
            error=error or "",
            filters={"agent_id": job.agent_id},
        )
    job.refresh_from_db()
    if not finished and (job.status != status or job.exit_code != exit_code):
        raise Conflict(
            f"This job already finished as {job.status}.",
            code="job_already_finished",
            details={"status": job.status, "exitCode": job.exit_code},
        )
    return job


def job_cancel(*, job: Job, actor: Actor) -> Job:
    """Cancel: a queued job at once; a running one is marked and its agent told on its next report."""
    with transaction.atomic():
        if _finalize(
            job_id=job.pk,
            from_statuses=[JobStatus.QUEUED],
            status=JobStatus.CANCELLED,
            exit_code=None,
            error=f"cancelled by {actor.label}" if actor.label else "cancelled",
        ):
            audit_record(org=job.org, actor=actor, action="job.cancelled", target=job, data={"shortId": job.short_id})
        elif Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, cancel_requested=False).update(
            cancel_requested=True
        ):
            audit_record(
                org=job.org, actor=actor, action="job.cancel_requested", target=job, data={"shortId": job.short_id}
            )
    job.refresh_from_db()
    if job.status in FINAL_STATUSES and job.status != JobStatus.CANCELLED:
        raise Conflict(f"This job already finished as {job.status}.", code="job_already_finished")
    return job


def job_fail(*, job_id: uuid.UUID, error: str, from_statuses: list[str], filters: dict | None = None) -> bool:
    """Fail a job if it is still in one of `from_statuses` (reaper, lost agent, missing input file)."""
    with transaction.atomic():
        return _finalize(
            job_id=job_id,
            from_statuses=from_statuses,
            status=JobStatus.FAILED,
            exit_code=None,
            error=error,
            filters=filters,
        )


# The error of a job its agent says it does not hold, after the agent had reported on it.
AGENT_LOST_THE_JOB = "agent lost the job"


def job_recover_unheld(
    *,
    org: Organization,
    agent_id: uuid.UUID,
    agent_name: str,
    held_job_ids: list[uuid.UUID],
    signed_at: datetime,
) -> dict[str, list[uuid.UUID]]:
    """Take back the running jobs handed to agent `agent_id` that its heartbeat does not list as held.

    A claim answer can be lost on its way (network drop, an agent cut its long poll on stop):
    the job is then running for an agent that never heard of it. A job claimed more than the
    grace (DEPLITE_CLAIM_CONFIRM_GRACE) before the heartbeat was signed (or before now, if the
    agent's clock is ahead) and not listed is
    recovered: back to queued if the server never received an event for it (the agent never
    started it, so it cannot run twice), else failed with AGENT_LOST_THE_JOB. The grace counts
    from the signed timestamp, so a heartbeat built before a claim answer arrived cannot disown
    that job. Each move is a conditional update, so a concurrent events or finish call and this
    recovery cannot both win. Returns the ids {"requeued": […], "failed": […], "cancelled": […]}.
    """
    # An agent clock running ahead (the signature window tolerates minutes) must not shorten the grace.
    cutoff = min(signed_at, timezone.now()) - timedelta(seconds=settings.DEPLITE_CLAIM_CONFIRM_GRACE)
    held = set(held_job_ids)
    candidates = [
        row
        for row in Job.objects.filter(
            org_id=org.pk, agent_id=agent_id, status=JobStatus.RUNNING, claimed_at__lt=cutoff
        ).values_list("id", "short_id", "claimed_at")
        if row[0] not in held
    ]
    done: dict[str, list[uuid.UUID]] = {"requeued": [], "failed": [], "cancelled": []}
    if not candidates:
        return done
    actor = Actor(kind="agent", id=str(agent_id), label=agent_name)
    for job_id, short_id, claimed_at in candidates:
        # Every update is conditioned on this very claim: a job that finished, was requeued or
        # claimed again meanwhile (a new claimed_at) is left alone.
        this_claim = {"agent_id": agent_id, "claimed_at": claimed_at}
        with transaction.atomic():
            never_started = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, last_event_seq=0, **this_claim)
            if never_started.filter(cancel_requested=False).update(
                status=JobStatus.QUEUED, agent_id=None, agent_name="", claimed_at=None
            ):
                action, outcome = "job.requeued", "requeued"
                transaction.on_commit(partial(job_enqueue_dispatch, job_id=job_id), robust=True)
            elif never_started.filter(cancel_requested=True).exists() and _finalize(
                # Cancelled while handed out and never started: what the user asked for, without a run.
                job_id=job_id,
                from_statuses=[JobStatus.RUNNING],
                status=JobStatus.CANCELLED,
                exit_code=None,
                error="cancelled",
                filters={**this_claim, "last_event_seq": 0},
            ):
                action, outcome = "job.cancelled", "cancelled"
            elif _finalize(
                job_id=job_id,
                from_statuses=[JobStatus.RUNNING],
                status=JobStatus.FAILED,
                exit_code=None,
                error=AGENT_LOST_THE_JOB,
                filters=this_claim,
            ):
                action, outcome = "job.failed", "failed"
            else:
                continue  # finished or moved meanwhile: whoever moved it won
            audit_record(
                org=org,
                actor=actor,
                action=action,
                target=Job(pk=job_id),
                data={"shortId": short_id, "reason": "the agent does not hold the job"},
            )
        done[outcome].append(job_id)
    if any(done.values()):
        logger.warning("Agent %s does not hold jobs it was handed; recovered: %s", agent_id, done)
    return done


def _finalize(
    *,
    job_id: uuid.UUID,
    from_statuses: list[str],
    status: str,
    exit_code: int | None,
    error: str,
    filters: dict | None = None,
) -> bool:
    """Move a job into a final state if it is still in `from_statuses`; the caller holds a transaction."""
    now = timezone.now()
    updated = Job.objects.filter(pk=job_id, status__in=from_statuses, **(filters or {})).update(
        status=status, finished_at=now, exit_code=exit_code, error=error[:10000]
    )
    if not updated:
        return False
    # Steps the agent never closed (lost agent, timeout, cancel) end with the job.
    JobStep.objects.filter(job_id=job_id, status=StepStatus.RUNNING).update(
        status=StepStatus.CANCELLED if status == JobStatus.CANCELLED else StepStatus.FAILED, finished_at=now
    )
    org_id = Job.objects.filter(pk=job_id).values_list("org_id", flat=True).first()
    transaction.on_commit(partial(_send_job_finished, job_id=job_id, org_id=org_id, status=status))
    return True


def _send_job_finished(*, job_id: uuid.UUID, org_id: uuid.UUID, status: str) -> None:
    # send_robust: a failing listener (a notification) must not undo or hide a finished job.
    for receiver, result in job_finished.send_robust(sender=Job, job_id=job_id, org_id=org_id, status=status):
        if isinstance(result, Exception):
            logger.error("job_finished receiver %r failed for job %s", receiver, job_id, exc_info=result)
