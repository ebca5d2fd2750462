"""Input files: a run param whose value is the id of one of the org's stored files.

Everything that touches `storage` for jobs lives here, in one place: the storage app's
`StoredFile` (org, file_name, size, status) and its signal `file_status_changed`
(file_id, org_id, status; sent after commit).
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction

from deplite.errors import Conflict
from orgs.models import Organization
from storage.models import FileStatus, StoredFile

logger = logging.getLogger(__name__)

AVAILABLE = FileStatus.AVAILABLE
VERIFYING = FileStatus.VERIFYING
# A file in one of these states will never become available: a job naming it cannot run.
DEAD_STATUSES = frozenset({FileStatus.FAILED, FileStatus.EXPIRED, FileStatus.DELETED})


def _as_uuid(value: str) -> uuid.UUID | None:
    if len(value) not in (32, 36):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def input_files_resolve(*, org: Organization, params: dict[str, str]) -> tuple[list[dict], bool]:
    """The params of a new job that name the org's files → (input_files, waiting_for_files).

    One query whatever the number of params. A file that failed, expired, was deleted or
    whose upload was never completed is a 409; one still being verified is accepted and
    the job waits for it (it is not claimable until then).
    """
    ids = {param: file_id for param, value in params.items() if (file_id := _as_uuid(value)) is not None}
    if not ids:
        return [], False
    found = {f.id: f for f in StoredFile.objects.filter(org=org, id__in=set(ids.values()))}
    files, waiting = [], False
    for param, file_id in sorted(ids.items()):
        stored = found.get(file_id)
        if stored is None:
            continue  # a UUID that is not one of this org's files is an ordinary param
        if stored.status == VERIFYING:
            waiting = True
        elif stored.status != AVAILABLE:
            raise Conflict(
                f'params.{param}: the file "{stored.file_name}" is {stored.status} and cannot be used.',
                code="input_file_unavailable",
                details={"param": param, "fileId": str(file_id), "status": stored.status},
            )
        files.append({"param": param, "fileId": str(file_id), "fileName": stored.file_name, "size": stored.size})
    return files, waiting


def on_file_status_changed(
    sender: object = None, *, file_id: uuid.UUID | str, org_id: uuid.UUID | str, status: str, **kwargs: object
) -> None:
    """Receiver of storage's `file_status_changed` (TriggersConfig.ready()): a file finished
    verifying (or died): release or fail the queued jobs waiting for it."""
    from . import services
    from .models import Job, JobStatus

    LIVE_UNCLAIMED = (JobStatus.QUEUED, JobStatus.WAITING, JobStatus.PENDING_APPROVAL)

    if status != AVAILABLE and status not in DEAD_STATUSES:
        return
    file_id = str(file_id)
    waiting = [
        job
        # Also the jobs an environment still holds: their files are ready when their turn comes.
        for job in Job.objects.filter(org_id=org_id, status__in=LIVE_UNCLAIMED, waiting_for_files=True)
        if any(f["fileId"] == file_id for f in job.input_files)
    ]
    for job in waiting:
        ids = [f["fileId"] for f in job.input_files]
        files = {str(f.id): f for f in StoredFile.objects.filter(org_id=org_id, id__in=ids)}
        dead = next(
            (f for f in job.input_files if getattr(files.get(f["fileId"]), "status", "deleted") in DEAD_STATUSES), None
        )
        if dead is not None:
            state = getattr(files.get(dead["fileId"]), "status", "deleted")
            services.job_fail(
                job_id=job.id,
                error=f'input file "{dead["fileName"]}" (param {dead["param"]}) is {state}',
                from_statuses=list(LIVE_UNCLAIMED),
            )
            continue
        if all(files[i].status == AVAILABLE for i in ids if i in files):
            refreshed = [{**f, "size": files[f["fileId"]].size} for f in job.input_files]
            with transaction.atomic():
                released = Job.objects.filter(pk=job.id, status__in=LIVE_UNCLAIMED, waiting_for_files=True).update(
                    waiting_for_files=False, input_files=refreshed
                )
                if released and job.status == JobStatus.QUEUED:
                    services.job_enqueue_dispatch(job_id=job.id)
