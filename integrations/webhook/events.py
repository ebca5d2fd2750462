"""What a webhook delivery says: the JSON document POSTed for a job's result (and the sample
"Send test" sends, in the same shape). Keys are camelCase, as everywhere on the wire."""

from __future__ import annotations

import hashlib
import uuid

from django.utils import timezone

from deplite.links import absolute_url
from storage.models import FileStatus
from triggers.models import Job, JobFile, JobFileDirection, JobStatus, Trigger

JOB_FINISHED = "job.finished"
# A finished job's result corrected later (its agent came back after it was failed `agent lost`).
JOB_RESULT_CORRECTED = "job.result_corrected"
TEST = "test"


def channel_key(url: str) -> str:
    """The outbox row's `channel` for a webhook: one row per job × endpoint, whatever the URL's length."""
    return hashlib.sha256(url.encode()).hexdigest()


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _environment(job: Job) -> str | None:
    """The environment's name (the job's copy, kept when the environment is deleted); null without one.
    Read with getattr: it works the same on a tree without environments."""
    name = getattr(job, "environment_name", "")
    if name:
        return name
    environment = getattr(job, "environment", None)
    return getattr(environment, "name", None) if environment is not None else None


def _outputs(job: Job) -> list[dict]:
    links = (
        JobFile.objects.filter(job=job, direction=JobFileDirection.OUTPUT, file__status=FileStatus.AVAILABLE)
        .select_related("file")
        .order_by("created_at", "id")
    )
    return [{"fileId": str(link.file_id), "name": link.file.file_name, "size": link.file.size} for link in links]


def _duration_seconds(job: Job) -> float | None:
    start = job.started_at or job.claimed_at
    if start is None or job.finished_at is None:
        return None
    return round((job.finished_at - start).total_seconds(), 3)


def job_event(job: Job, *, event: str = JOB_FINISHED) -> dict:
    """The document for a finished job (`job.org` loaded)."""
    return {
        "event": event,
        "jobId": str(job.pk),
        "shortId": job.short_id,
        "status": job.status,
        "trigger": {"id": str(job.trigger_id) if job.trigger_id else None, "name": job.trigger_name},
        "environment": _environment(job),
        "ref": job.ref,
        "params": job.params or {},
        "duration": _duration_seconds(job),
        "exitCode": job.exit_code,
        "error": job.error or None,
        "outputs": _outputs(job),
        "url": absolute_url("job-detail", org_slug=job.org.slug, job_id=job.pk),
        "finishedAt": _iso(job.finished_at),
    }


def sample_event(trigger: Trigger) -> dict:
    """What "Send test" posts: a made-up succeeded job of this trigger, marked `event: test`."""
    job_id = uuid.uuid4()
    return {
        "event": TEST,
        "jobId": str(job_id),
        "shortId": job_id.hex[:8],
        "status": JobStatus.SUCCEEDED.value,
        "trigger": {"id": str(trigger.pk), "name": trigger.name},
        "environment": None,
        "ref": trigger.default_ref,
        "params": {},
        "duration": 1.0,
        "exitCode": 0,
        "error": None,
        "outputs": [],
        "url": absolute_url("trigger-detail", org_slug=trigger.org.slug, trigger_id=trigger.pk),
        "finishedAt": _iso(timezone.now()),
    }
