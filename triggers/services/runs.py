"""Running a trigger: the queued job, its Idempotency-Key and the wake-up of the org's agents."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import redis
from django.db import IntegrityError, transaction
from django.utils import timezone

from deplite import metrics, one_statement
from deplite.background import enqueue_after_commit, send_after_commit
from deplite.errors import Conflict, Unprocessable
from orgs.actors import Actor
from orgs.services import audit_event

from .. import input_files, outputs, wakeups
from ..environments import gate
from ..models import IdempotencyKey, Job, JobStatus, NotifyOn, QueueOrder, Trigger
from ..payloads import job_run_answer
from ..signals import job_awaiting_approval

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


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


# `trigger_run(stored_key=…)` default: look the Idempotency-Key up here.
LOOK_UP = object()


def trigger_run(
    *,
    trigger: Trigger,
    actor: Actor,
    source: str,
    ref: str | None,
    params: dict[str, str],
    idempotency_key: str | None = None,
    stored_key: IdempotencyKey | None | object = LOOK_UP,
    rerun_of: Job | None = None,
    rollback_of: Job | None = None,
    record_lock: bool = False,
    commit_time: datetime | None = None,
) -> RunResult:
    """Create a queued job for `trigger` (the run endpoint, the Run form and chat commands).

    With an idempotency key, the first successful answer is stored with the job; a retry
    (or a concurrent twin, which waits on the key's unique index) gets that answer back, a
    different request (other ref or params) under the same key a 422. A caller that already
    read the key's row (the run endpoint, in its API token's query) passes it as `stored_key`.

    On PostgreSQL a new run is ONE statement: the job, its key holding its answer from the
    start (no follow-up UPDATE), the trigger's last-job pointer and the audit row
    (deplite.one_statement). Expired keys are removed by the `idempotency_keys_purge`
    sweeper, not here.

    A trigger that names an environment runs through its rules in one transaction holding the
    environment's lock (environments.gate): a ref it does not allow is a 422, its lock a 409
    (`record_lock`, for a scheduled fire: a job is made and ends cancelled, so the miss shows), and
    the job starts `pending_approval`, `waiting` or `queued`. Two queries more than without one.
    """
    request_hash = run_request_hash(ref=ref, params=params)
    if idempotency_key is not None:
        stored = _idempotency_lookup(trigger=trigger, key=idempotency_key) if stored_key is LOOK_UP else stored_key
        if stored is not None:
            return _replay(stored, request_hash)
    if not trigger.enabled:
        raise Conflict("This trigger is disabled.", code="trigger_disabled")
    files, waiting = input_files.input_files_resolve(org=trigger.org, params=params)
    gated = trigger.environment_id is not None
    for attempt in (1, 2):
        try:
            with transaction.atomic() if gated else nullcontext():
                job = _new_job(trigger=trigger, actor=actor, source=source, ref=ref, params=params)
                job.input_files, job.waiting_for_files = files, waiting
                job.rerun_of, job.rollback_of = rerun_of, rollback_of
                job.commit_time = commit_time  # the run request's commitTime, for lead time (insights)
                job.fill_short_id()
                environment, admission = None, None
                if gated:
                    environment, admission = _admit(job, trigger=trigger, record_lock=record_lock)
                if job.status == JobStatus.QUEUED:
                    job.queued_at = job.created_at
                body = job_run_answer(job)
                key_row = None
                if idempotency_key is not None:
                    # A concurrent twin's write waits on the key's unique index until ours commits,
                    # then fails whole (its job row with it) and replays our answer.
                    key_row = IdempotencyKey(
                        org=trigger.org,
                        trigger=trigger,
                        key=idempotency_key,
                        request_hash=request_hash,
                        response_status=202,
                        response_body=body,
                        job=job,
                    )
                audit = audit_event(
                    org=trigger.org,
                    actor=actor,
                    action="job.created",
                    target=job,
                    data={
                        "trigger": trigger.name,
                        "shortId": job.short_id,
                        "ref": job.ref,
                        "source": source,
                        **({"rerunOf": rerun_of.short_id} if rerun_of is not None else {}),
                        **({"rollbackOf": rollback_of.short_id} if rollback_of is not None else {}),
                        **({"environment": environment.name, "status": job.status} if environment is not None else {}),
                    },
                )
                # All or none, as one statement: the job, its key, the trigger's last-job pointer
                # (lists join it instead of looking through every job), its input files' links and the audit row.
                one_statement.execute(
                    one_statement.insert(job),
                    one_statement.insert(key_row) if key_row is not None else None,
                    one_statement.insert_all(outputs.job_input_links(job)),
                    one_statement.update(Trigger.objects.filter(pk=trigger.pk), last_job=job),
                    one_statement.insert(audit),
                    savepoint=not gated,
                )
                # Counted here, not on post_save: the one-statement write sends no model signals.
                transaction.on_commit(partial(metrics.JOBS_CREATED.labels(source=source or "unknown").inc))
                if admission is not None and (admission.refused_by_lock or job.status == JobStatus.WAITING):
                    body = _after_admission(job, environment=environment, admission=admission, body=body)
                if not waiting and job.status == JobStatus.QUEUED:
                    job_enqueue_dispatch(job_id=job.id, org_id=job.org_id, labels=job.agent_labels)
                if job.status == JobStatus.PENDING_APPROVAL:
                    send_after_commit(job_awaiting_approval, sender=Job, job_id=job.id, org_id=job.org_id)
            return RunResult(status=202, body=body, replayed=False, job_id=job.id)
        except IntegrityError:
            if idempotency_key is None:
                raise
            stored = _idempotency_lookup(trigger=trigger, key=idempotency_key)
            if stored is not None:
                return _replay(stored, request_hash)
            if attempt == 1 and _forget_expired_key(trigger=trigger, key=idempotency_key):
                continue  # an expired key the sweeper has not removed yet held the index
            raise Conflict(
                "A request with this Idempotency-Key is still being processed. Retry shortly.",
                code="idempotency_key_in_use",
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def job_rerun(
    *, job: Job, actor: Actor, source: str, ref: str | None = None, params: dict[str, str] | None = None
) -> RunResult:
    """Run `job`'s trigger again with its ref and params, or `ref` (already checked by
    `rules.clean_ref`, as a run's) and `params` (replacing them all) in their place.

    The new job goes through `trigger_run` like any other (enabled check, input files,
    dispatch, audit) and links back to the job it repeats. It runs the trigger as it is
    now (workflow, labels): a re-run asks for the same thing, not a frozen copy.
    """
    trigger = Trigger.objects.select_related("org").filter(pk=job.trigger_id).first()
    if trigger is None:
        raise Conflict("The trigger of this job was deleted, so it cannot be run again.", code="trigger_deleted")
    return trigger_run(
        trigger=trigger,
        actor=actor,
        source=source,
        ref=job.ref if ref is None else ref,
        params=dict(job.params) if params is None else params,
        rerun_of=job,
    )


def _admit(job: Job, *, trigger: Trigger, record_lock: bool):
    """Lock the trigger's environment and let its rules decide what `job` starts as."""
    environment = gate.environment_for_update(trigger.environment_id)
    if environment is None:  # PROTECT keeps it while the trigger names it; a race with an edit
        raise Conflict("This trigger's environment no longer exists.", code="environment_not_found")
    admission = gate.job_admit(
        environment=environment, requested_by_id=job.requested_by_id, ref=job.ref, record_lock=record_lock
    )
    # Stamped again under the lock: the queue's order (fifo, newest) is created_at, so it must be the order
    # runs were admitted in. Stamped when the row was built, a run that waited on the lock kept an earlier
    # time than the run that took the lock first and went ahead (the drill saw #2 run before #1).
    job.created_at = timezone.now()
    job.environment, job.environment_name = environment, environment.name
    job.status, job.approval_expires_at = admission.status, admission.approval_expires_at
    return environment, admission


def _after_admission(job: Job, *, environment, admission, body: dict) -> dict:
    """A scheduled fire the lock refused ends cancelled at once; a new waiting job in a `newest`
    environment supersedes the older waiting ones."""
    from .lifecycle import job_end_gated

    if admission.refused_by_lock:
        job_end_gated(job_id=job.id, error=admission.refused_by_lock, environment=environment)
        return {**body, "status": JobStatus.CANCELLED}
    if environment.queue == QueueOrder.NEWEST:
        gate.environment_advance(environment=environment)
    return body


def _new_job(*, trigger: Trigger, actor: Actor, source: str, ref: str | None, params: dict[str, str]) -> Job:
    """The job row a run of `trigger` creates: what it copies from the trigger and who asked.

    A job keeps its own copy of what it needs from its trigger (name, workflow, labels, notify target),
    so editing or deleting the trigger later never changes a job already asked for.
    """
    return Job(
        org=trigger.org,
        trigger=trigger,
        trigger_name=trigger.name,
        workflow=trigger.workflow,
        agent_labels=list(trigger.agent_labels),
        ref=ref if ref else trigger.default_ref,
        params=params,
        source=source,
        # Where the result is announced: copied too, so a trigger edited later does not redirect it.
        notify_provider=trigger.notify_provider,
        notify_team_id=trigger.notify_team_id,
        notify_channel_id=trigger.notify_channel_id,
        notify_url=trigger.notify_url,
        notify_on=trigger.notify_on if trigger.notify_provider else NotifyOn.NONE,
        requested_by_id=gate.person_id(actor),
        **actor.stamp(),
    )


def _idempotency_lookup(*, trigger: Trigger, key: str) -> IdempotencyKey | None:
    return IdempotencyKey.objects.filter(
        trigger=trigger, key=key, created_at__gte=timezone.now() - IDEMPOTENCY_KEY_TTL
    ).first()


def _forget_expired_key(*, trigger: Trigger, key: str) -> bool:
    deleted, _ = IdempotencyKey.objects.filter(
        trigger=trigger, key=key, created_at__lt=timezone.now() - IDEMPOTENCY_KEY_TTL
    ).delete()
    return bool(deleted)


def _replay(stored: IdempotencyKey, request_hash: str) -> RunResult:
    if stored.request_hash != request_hash:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request body.", code="idempotency_key_reused"
        )
    return RunResult(status=stored.response_status, body=stored.response_body, replayed=True, job_id=stored.job_id)


def job_enqueue_dispatch(*, job_id: uuid.UUID, org_id: uuid.UUID | None = None, labels: list | None = None) -> None:
    """Once the current transaction commits (at once outside one), wake one waiting agent
    that can take the job.

    With the job's org and labels at hand the wake-up is published straight to Redis (one
    PUBLISH, bounded by wakeups.PUBLISH_TIMEOUT_SECONDS): a trip through the broker and a
    worker would add tens of milliseconds to every deploy's start. Otherwise the dispatch
    task reads them and publishes (deplite.background). A Redis that is down or slow must
    not turn an accepted job into an error: the job row is committed and the sweeper
    re-announces it.
    """
    from ..tasks import job_dispatch

    if org_id is None:
        enqueue_after_commit(job_dispatch, str(job_id))
        return
    transaction.on_commit(partial(_publish_wakeup, job_id=job_id, org_id=org_id, labels=labels or []), robust=True)


def _publish_wakeup(*, job_id: uuid.UUID, org_id: uuid.UUID, labels: list) -> None:
    try:
        wakeups.publish_jobs_available(org_id=org_id, labels=labels)
    except (redis.RedisError, OSError):
        logger.warning("Could not publish the wake-up for job %s; the sweeper will wake agents.", job_id)
