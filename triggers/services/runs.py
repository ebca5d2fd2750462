"""Running a trigger: the queued job, its Idempotency-Key and the wake-up of the org's agents."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from deplite.background import enqueue_after_commit
from deplite.errors import Conflict, Unprocessable
from orgs.actors import Actor
from orgs.services import audit_record

from .. import input_files
from ..models import IdempotencyKey, Job, Trigger
from ..payloads import job_run_answer

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


def trigger_run(
    *,
    trigger: Trigger,
    actor: Actor,
    source: str,
    ref: str | None,
    params: dict[str, str],
    idempotency_key: str | None = None,
    rerun_of: Job | None = None,
) -> RunResult:
    """Create a queued job for `trigger` (the run endpoint, the Run form and chat commands).

    With an idempotency key, the first successful answer is stored with the job in one
    transaction; a retry (or a concurrent twin, which waits on the key's unique index)
    gets that answer back, a different request (other ref or params) under the same key a 422.
    """
    request_hash = run_request_hash(ref=ref, params=params)
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
            job = _new_job(trigger=trigger, actor=actor, source=source, ref=ref, params=params)
            job.input_files, job.waiting_for_files = files, waiting
            job.rerun_of = rerun_of
            job.save(force_insert=True)
            body = job_run_answer(job)
            if key_row is not None:
                key_row.response_body = body
                key_row.job = job
                key_row.save(update_fields=["response_body", "job"])
            audit_record(
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
                },
            )
            if not waiting:
                job_enqueue_dispatch(job_id=job.id)
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


def job_rerun(*, job: Job, actor: Actor, source: str, params: dict[str, str] | None = None) -> RunResult:
    """Run `job`'s trigger again with its ref and params (or `params`, replacing them all).

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
        ref=job.ref,
        params=dict(job.params) if params is None else params,
        rerun_of=job,
    )


def _new_job(*, trigger: Trigger, actor: Actor, source: str, ref: str | None, params: dict[str, str]) -> Job:
    """The job row a run of `trigger` creates: what it copies from the trigger and who asked.

    A job keeps its own copy of what it needs from its trigger (name, workflow, labels),
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
        **actor.stamp(),
    )


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
    """Once the current transaction commits, ask a worker to wake the org's waiting agents.

    A broker that is down or slow must not turn an accepted job into an error
    (deplite.background): the job row is committed, waiting agents re-check on their own
    and the sweeper re-publishes.
    """
    from ..tasks import job_dispatch

    enqueue_after_commit(job_dispatch, str(job_id))
