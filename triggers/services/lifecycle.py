"""How a job ends: the agent's report, a user's cancel, the reapers, an agent that lost its job.

Every move of a job into a final state goes through `_finalize`, a conditional update
from the states it may leave: whoever wins that update sends `job_finished` after commit,
so the signal fires exactly once per job whoever (agent, user, reaper) finishes it.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deplite.background import send_after_commit
from deplite.errors import Conflict
from orgs.actors import Actor
from orgs.models import AuditEvent, Organization
from orgs.services import audit_record

from ..environments import gate
from ..models import FINAL_STATUSES, GATED_STATUSES, Environment, Job, JobStatus, JobStep, StepStatus
from ..signals import job_finished, job_result_corrected
from . import runs

logger = logging.getLogger(__name__)


# The error of a running job the lost-agent reaper failed (agents.tasks.agents_reap_lost): the server
# judged the agent gone by its silence. If the agent comes back with the job's log and result, they
# are taken (job_record_events, job_finish), unless a re-run of the job has taken its place meanwhile.
AGENT_LOST = "agent lost"


def job_lost_by_silence(job: Job) -> bool:
    """The job was failed only because its agent was not heard from (its report may still come)."""
    return job.status == JobStatus.FAILED and job.error == AGENT_LOST


def job_replaced(job: Job) -> bool:
    """Another job has taken this one's place: a re-run of it was created."""
    return Job.objects.filter(rerun_of_id=job.pk).exists()


def job_finish(*, job: Job, status: str, exit_code: int | None, error: str | None) -> Job:
    """The agent's final report. Repeating the same report is harmless; a different one is a 409.

    A job failed as `agent lost` takes the report of its agent come back: its status is corrected
    (audited, `job_result_corrected` sent), unless a re-run has taken its place; then the report is
    kept in the audit log, the status stays and the answer is the 409.
    """
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
        if not finished:
            _take_late_result(job_id=job.pk, agent_id=job.agent_id, status=status, exit_code=exit_code, error=error)
    job.refresh_from_db()
    if not finished and (job.status != status or job.exit_code != exit_code):
        raise Conflict(
            f"This job already finished as {job.status}.",
            code="job_already_finished",
            details={"status": job.status, "exitCode": job.exit_code},
        )
    return job


def _take_late_result(
    *, job_id: uuid.UUID, agent_id: uuid.UUID | None, status: str, exit_code: int | None, error: str | None
) -> bool:
    """The final report of a job failed as `agent lost`, from its agent come back; the caller holds a
    transaction. Returns True when the job's status was corrected."""
    job = Job.objects.select_for_update().select_related("org").filter(pk=job_id, agent_id=agent_id).first()
    if job is None or not job_lost_by_silence(job):
        return False
    actor = Actor.for_agent(agent_id=agent_id, name=job.agent_name)
    report = {"shortId": job.short_id, "status": status, "exitCode": exit_code, "error": error or ""}
    if job_replaced(job):
        # A re-run took its place: the report is kept (once), the job's outcome stays.
        kept = AuditEvent.objects.filter(org_id=job.org_id, action="job.late_result_kept", target_id=str(job.pk))
        if not kept.exists():
            audit_record(
                org=job.org,
                actor=actor,
                action="job.late_result_kept",
                target=job,
                data={**report, "reason": "a re-run of the job took its place"},
            )
        return False
    Job.objects.filter(pk=job.pk, status=JobStatus.FAILED, error=AGENT_LOST).update(
        status=status, exit_code=exit_code, error=(error or "")[:10000], finished_at=timezone.now()
    )
    audit_record(
        org=job.org,
        actor=actor,
        action="job.result_corrected",
        target=job,
        data={**report, "was": {"status": JobStatus.FAILED, "error": AGENT_LOST}},
    )
    send_after_commit(job_result_corrected, sender=Job, job_id=job.pk, org_id=job.org_id, status=status)
    logger.info("Job %s: its agent came back; result corrected from 'agent lost' to %s.", job.pk, status)
    return True


def job_cancel(*, job: Job, actor: Actor) -> Job:
    """Cancel: a queued (or still gated) job at once; a running one is marked and its agent told on its next report.

    Who asked is kept on the job (`cancelled_by`) whichever way it ends.
    """
    who = actor.label[:255]
    with transaction.atomic():
        if _finalize(
            job_id=job.pk,
            from_statuses=[JobStatus.QUEUED, *GATED_STATUSES],
            status=JobStatus.CANCELLED,
            exit_code=None,
            error=f"cancelled by {who}" if who else "cancelled",
        ):
            Job.objects.filter(pk=job.pk).update(cancelled_by=who)
            audit_record(org=job.org, actor=actor, action="job.cancelled", target=job, data={"shortId": job.short_id})
        elif Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, cancel_requested=False).update(
            cancel_requested=True, cancelled_by=who
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
    grace (DEPLITE_CLAIM_CONFIRM_GRACE_SECONDS) before the heartbeat was signed (or before now, if the
    agent's clock is ahead) and not listed is
    recovered: back to queued if the server never received an event for it (the agent never
    started it, so it cannot run twice), else failed with AGENT_LOST_THE_JOB. The grace counts
    from the signed timestamp, so a heartbeat built before a claim answer arrived cannot disown
    that job. Each move is a conditional update, so a concurrent events or finish call and this
    recovery cannot both win. Returns the ids {"requeued": […], "failed": […], "cancelled": […]}.
    """
    # An agent clock running ahead (the signature window tolerates minutes) must not shorten the grace.
    cutoff = min(signed_at, timezone.now()) - timedelta(seconds=settings.DEPLITE_CLAIM_CONFIRM_GRACE_SECONDS)
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
    actor = Actor.for_agent(agent_id=agent_id, name=agent_name)
    for job_id, short_id, claimed_at in candidates:
        # Every update is conditioned on this very claim: a job that finished, was requeued or
        # claimed again meanwhile (a new claimed_at) is left alone.
        this_claim = {"agent_id": agent_id, "claimed_at": claimed_at}
        with transaction.atomic():
            never_started = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, last_event_seq=0, **this_claim)
            if never_started.filter(cancel_requested=False).update(
                status=JobStatus.QUEUED, agent_id=None, agent_name="", claimed_at=None, job_token_hash=""
            ):
                action, outcome = "job.requeued", "requeued"
                runs.job_enqueue_dispatch(job_id=job_id)
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


def job_end_gated(*, job_id: uuid.UUID, error: str, environment: Environment | None = None) -> bool:
    """End a job its environment still holds (pending approval or waiting) as cancelled, with
    `error` saying why: rejected, superseded, approval timed out, refused by a lock. Notified as
    a failure. The caller holds a transaction (and, if it passes `environment`, its lock: the
    caller moves the queue on itself)."""
    return _finalize(
        job_id=job_id,
        from_statuses=list(GATED_STATUSES),
        status=JobStatus.CANCELLED,
        exit_code=None,
        error=error,
        advance=environment is None,
    )


def _finalize(
    *,
    job_id: uuid.UUID,
    from_statuses: list[str],
    status: str,
    exit_code: int | None,
    error: str,
    filters: dict | None = None,
    advance: bool = True,
) -> bool:
    """Move a job into a final state if it is still in `from_statuses`; the caller holds a transaction.

    A job of an environment frees its place there: the environment's lock is taken first (the
    gate's order: environment, then job) and the next waiting job moves on in the same
    transaction, unless `advance` is False (a caller that moves the queue on itself).
    """
    now = timezone.now()
    row = Job.objects.filter(pk=job_id).values_list("org_id", "environment_id").first()
    if row is None:
        return False
    org_id, environment_id = row
    environment = gate.environment_for_update(environment_id) if environment_id and advance else None
    # The job's credential dies with it (job_for_token also checks the status).
    updated = Job.objects.filter(pk=job_id, status__in=from_statuses, **(filters or {})).update(
        status=status, finished_at=now, exit_code=exit_code, error=error[:10000], job_token_hash=""
    )
    if not updated:
        return False
    # Steps the agent never closed (lost agent, timeout, cancel) end with the job; listed ones
    # that never started are skipped.
    JobStep.objects.filter(job_id=job_id, status=StepStatus.RUNNING).update(
        status=StepStatus.CANCELLED if status == JobStatus.CANCELLED else StepStatus.FAILED, finished_at=now
    )
    JobStep.objects.filter(job_id=job_id, status=StepStatus.PENDING).update(status=StepStatus.SKIPPED)
    # After commit and robustly: a failing listener (a notification) must not undo or hide a finished job.
    send_after_commit(job_finished, sender=Job, job_id=job_id, org_id=org_id, status=status)
    if environment is not None:
        gate.environment_advance(environment=environment)
    return True
