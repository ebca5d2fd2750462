"""The job as plain JSON, in one place: what the run endpoint answers (and an Idempotency-Key
replays) and what an agent's claim receives. The API's job resources (`JobOutput`) name
the same fields the same way.
"""

from __future__ import annotations

from .models import Job


def _job_fields(job: Job) -> dict:
    return {"shortId": job.short_id, "ref": job.ref, "params": job.params}


def job_run_answer(job: Job) -> dict:
    """`202` body of a run (stored with its Idempotency-Key and replayed as is). A rollback's also
    names the deployment it rolls back (`rollbackOf`)."""
    answer = {"jobId": str(job.id), **_job_fields(job), "status": job.status, "url": job.url}
    if job.rollback_of_id is not None:
        answer["rollbackOf"] = rollback_of_field(job)
    return answer


def rollback_of_field(job: Job) -> dict | None:
    """`{"id", "shortId"}` of the deployment a rollback rolls back (a short id is its id's first 8 hex)."""
    if job.rollback_of_id is None:
        return None
    return {"id": str(job.rollback_of_id), "shortId": job.rollback_of_id.hex[:8]}


def job_claim_payload(job: Job) -> dict:
    """What an agent gets for a job it claimed (DESIGN: agent protocol, claim)."""
    return {
        "id": str(job.pk),
        **_job_fields(job),
        "workflow": job.workflow,
        "trigger": {"id": str(job.trigger_id) if job.trigger_id else None, "name": job.trigger_name},
        "inputFiles": job.input_files,
        "createdAt": job.created_at.isoformat().replace("+00:00", "Z"),
        # The job's own credential for its steps (DEPLITE_JOB_TOKEN), issued by this claim (job_claim_next).
        "jobToken": getattr(job, "job_token", None),
    }
