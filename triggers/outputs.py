"""Output files: what a running job uploads from its steps, straight to the customer's bucket.

The server only presigns and records: the output binding is chosen here, the file is registered
and signed by storage (`storage.services.output_presign_upload`), linked to its job by a
`JobFile(output)` row, and checked when the agent says the PUT is done.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction

from deplite.errors import Conflict, NotFound
from orgs.actors import Actor
from storage import services as storage_services
from storage.models import StorageBinding, StoredFile

from .models import Job, JobFile, JobFileDirection


def job_actor(job: Job) -> Actor:
    """Who acts when a step uses its DEPLITE_JOB_TOKEN: the agent running the job."""
    return Actor.for_agent(agent_id=job.agent_id or "", name=f"{job.agent_name or 'agent'} (job #{job.short_id})")


def output_binding_for(job: Job) -> StorageBinding:
    """Where `job`'s outputs go: its trigger's output binding, else the binding of its (first)
    input file, else the org's only binding. None of these: Conflict `no_output_binding`."""
    trigger = job.trigger
    if trigger is not None and trigger.output_binding_id is not None:
        binding = StorageBinding.objects.filter(pk=trigger.output_binding_id, org_id=job.org_id).first()
        if binding is not None:
            return binding
    input_ids = [f["fileId"] for f in job.input_files or [] if f.get("fileId")]
    if input_ids:
        stored = (
            StoredFile.objects.select_related("binding")
            .filter(org_id=job.org_id, pk__in=input_ids)
            .order_by("pk")
            .first()
        )
        if stored is not None:
            return stored.binding
    only = list(StorageBinding.objects.filter(org_id=job.org_id)[:2])
    if len(only) == 1:
        return only[0]
    where = f'trigger "{job.trigger_name}"' if trigger is not None else "this job's trigger"
    raise Conflict(
        f"This job has no output binding: set outputBindingId on {where} to the storage binding its files "
        f"should go to (the org has {'no' if not only else 'more than one'} storage binding).",
        code="no_output_binding",
    )


def job_output_register(
    *, job: Job, file_name: str, size: int, sha256: str, content_type: str
) -> tuple[StoredFile, str, dict[str, str]]:
    """A running job declares a file it will upload: the pending file, its presigned PUT URL and
    the headers the PUT must send. At most DEPLITE_MAX_OUTPUTS_PER_JOB per job (409 `too_many_outputs`)."""
    binding = output_binding_for(job)
    with transaction.atomic():
        # The job's row is the lock that keeps two concurrent uploads from both taking the last place.
        Job.objects.select_for_update().filter(pk=job.pk).values_list("pk", flat=True).first()
        limit = settings.DEPLITE_MAX_OUTPUTS_PER_JOB
        if JobFile.objects.filter(job=job, direction=JobFileDirection.OUTPUT).count() >= limit:
            raise Conflict(
                f"This job already has {limit} output files, the most a job may have.",
                code="too_many_outputs",
                details={"maxOutputs": limit},
            )
        file, url, headers = storage_services.output_presign_upload(
            org=job.org,
            binding=binding,
            job_id=job.pk,
            actor=job_actor(job),
            file_name=file_name,
            content_type=content_type,
            size=size,
            sha256=sha256,
        )
        JobFile.objects.create(org_id=job.org_id, job=job, file=file, direction=JobFileDirection.OUTPUT)
    return file, url, headers


def job_output_complete(*, job: Job, file_id: str) -> StoredFile:
    """The agent's PUT is done: check the object (storage.services.output_complete). Only an output
    of this very job; any other file is a 404."""
    try:
        pk = uuid.UUID(str(file_id))
    except ValueError:
        raise NotFound("File not found.") from None
    link = (
        JobFile.objects.select_related("file__binding", "file__org")
        .filter(job=job, file_id=pk, direction=JobFileDirection.OUTPUT)
        .first()
    )
    if link is None:
        raise NotFound("File not found.")
    return storage_services.output_complete(file=link.file, actor=job_actor(job))


def job_input_links(job: Job) -> list[JobFile]:
    """The JobFile(input) rows of a new job's input files, not saved (the run writes them with the job)."""
    ids = dict.fromkeys(f["fileId"] for f in job.input_files or [])  # one row per file, if two params name it
    return [JobFile(org_id=job.org_id, job=job, file_id=uuid.UUID(i), direction=JobFileDirection.INPUT) for i in ids]


def job_files(job: Job) -> list[JobFile]:
    """The job's input and output files (inputs first, then outputs in upload order), each with its file."""
    return list(JobFile.objects.filter(job=job).select_related("file").order_by("direction", "created_at", "id"))
