"""An agent's events on a running job: step changes and log output, idempotent by sequence number."""

from __future__ import annotations

import math
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deplite import metrics

from ..log_store import log_chunks_append
from ..models import Job, JobLogChunk, JobStatus, JobStep, StepStatus
from .lifecycle import job_lost_by_silence, job_replaced

_LOG_MARKER = (
    "\n[deplite] Log truncated: the output of this job passed the limit of {limit} bytes; the rest was dropped.\n"
)


def job_record_events(*, job: Job, events: list[dict]) -> tuple[int, bool]:
    """Apply an agent's events to a running job it holds. Returns (acceptedThrough, cancelRequested).

    Idempotent by sequence number: events at or below the last accepted seq are resends
    and ignored. A job that is already final answers "cancel" so the agent stops, except a
    job failed as `agent lost` (its agent was only silent, maybe by the server's fault): its
    events are still appended in order, and the agent is told to stop only if a re-run of
    the job has taken its place.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        stop = job.cancel_requested
        if job.status != JobStatus.RUNNING:
            if not job_lost_by_silence(job):
                return job.last_event_seq, True
            stop = stop or job_replaced(job)
        fresh: dict[int, dict] = {}
        for event in events:
            if event["seq"] > job.last_event_seq:
                fresh.setdefault(event["seq"], event)
        if not fresh:
            return job.last_event_seq, stop
        ordered = [fresh[s] for s in sorted(fresh)]
        log_bytes_before = job.log_bytes
        steps: dict[int, JobStep] | None = None
        touched: dict[int, JobStep] = {}
        chunks: list[JobLogChunk] = []
        limit = settings.DEPLITE_JOB_LOG_MAX_BYTES
        for event in ordered:
            kind, at = event["type"], event.get("at") or timezone.now()
            if kind == "job_started":
                job.started_at = job.started_at or at
                if event.get("steps"):
                    steps = _list_workflow_steps(job, event["steps"])
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
                    step.allowed_failure = step.status == StepStatus.FAILED and bool(event.get("allowed"))
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
                                    stream=_stream(event),
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
                            org_id=job.org_id,
                            job=job,
                            seq=job.log_seq,
                            step=event.get("step"),
                            stream=_stream(event),
                            data=data,
                            at=at,
                        )
                    )
        for step in touched.values():
            step.save()
        log_chunks_append(chunks)
        if job.log_bytes > log_bytes_before:
            transaction.on_commit(partial(metrics.LOG_BYTES_INGESTED.inc, job.log_bytes - log_bytes_before))
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
        return job.last_event_seq, stop


def _stream(event: dict) -> str:
    return "stderr" if event.get("stream") == "stderr" else ""


def _list_workflow_steps(job: Job, names: list[dict]) -> dict[int, JobStep]:
    """The parsed workflow's steps as pending rows (a resent job_started adds nothing)."""
    existing = set(JobStep.objects.filter(job=job).values_list("index", flat=True))
    JobStep.objects.bulk_create(
        [
            JobStep(
                org_id=job.org_id, job=job, index=index, name=(item.get("name") or "")[:200], status=StepStatus.PENDING
            )
            for index, item in enumerate(names)
            if index not in existing
        ]
    )
    return {s.index: s for s in JobStep.objects.filter(job=job)}
