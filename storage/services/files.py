"""Files, API side: register an upload and sign its PUT, complete, download, delete.

The bucket object is checked (`verification.file_verify`) and removed
(`verification.file_remove_object`) by worker tasks enqueued after commit.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deplite.background import enqueue_after_commit, send_after_commit
from deplite.errors import Conflict, PayloadTooLarge
from orgs.actors import Actor
from orgs.models import Organization
from orgs.services import audit_record

from .. import names, s3
from ..models import FileStatus, StorageBinding, StoredFile
from ..signals import file_status_changed

# SigV4 presigned URLs are valid for at most 7 days; S3 refuses longer ones.
MAX_PRESIGN_EXPIRY_SECONDS = 7 * 24 * 3600


def _presign_expiry() -> int:
    return max(1, min(int(settings.DEPLITE_PRESIGN_EXPIRY_SECONDS), MAX_PRESIGN_EXPIRY_SECONDS))


def announce(file: StoredFile, status: str) -> None:
    """Send file_status_changed once the current transaction commits."""
    send_after_commit(file_status_changed, sender=StoredFile, file_id=file.pk, org_id=file.org_id, status=status)


def enqueue_verify(file_id: object) -> None:
    from ..tasks import verify_file

    enqueue_after_commit(verify_file, str(file_id))


def enqueue_remove(file_id: object) -> None:
    from ..tasks import remove_object

    enqueue_after_commit(remove_object, str(file_id))


def file_presign_upload(
    *,
    org: Organization,
    binding: StorageBinding,
    actor: Actor,
    file_name: str,
    content_type: str,
    size: int | None = None,
) -> tuple[StoredFile, str, dict[str, str], int]:
    """Register a pending file and sign a PUT URL for it, locally (no network call).

    Returns (file, upload_url, headers to send, expiresInSeconds).
    """
    if size is not None and size > settings.DEPLITE_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"size: files may be at most {settings.DEPLITE_MAX_UPLOAD_BYTES} bytes.",
            code="file_too_large",
            details={"maxBytes": settings.DEPLITE_MAX_UPLOAD_BYTES},
        )
    file_id = uuid.uuid4()
    key = names.object_key(prefix=binding.prefix, org_id=org.pk, file_id=file_id, file_name=file_name)
    expires_in = _presign_expiry()
    # Signed before the row is written: a signing error leaves nothing behind.
    upload_url = s3.presign_put(binding=binding, key=key, size=size, expires_in=expires_in)
    with transaction.atomic():
        file = StoredFile.objects.create(
            id=file_id,
            org=org,
            binding=binding,
            file_name=file_name,
            content_type=content_type,
            declared_size=size,
            object_key=key,
            created_by_user=actor.user,
            created_by_token=actor.token,
            **actor.stamp(),
        )
        audit_record(
            org=org,
            actor=actor,
            action="file.upload_started",
            target=file,
            data={"fileName": file_name, "bindingId": str(binding.pk), "size": size},
        )
    headers = {"Content-Type": content_type}
    if size is not None:
        headers["Content-Length"] = str(size)
    return file, upload_url, headers, expires_in


def file_complete(*, file: StoredFile, actor: Actor) -> StoredFile:
    """The client says the PUT is done: verify it in the background. Calling it again
    (verifying, available, failed) changes nothing; an expired or deleted file is a 409."""
    with transaction.atomic():
        now = timezone.now()
        claimed = StoredFile.objects.filter(pk=file.pk, status=FileStatus.PENDING).update(
            status=FileStatus.VERIFYING, completed_at=now, updated_at=now, verify_lease_until=None
        )
        if claimed:
            audit_record(org=file.org, actor=actor, action="file.completed", target=file, data={})
            enqueue_verify(file.pk)
    file.refresh_from_db()
    if file.status in (FileStatus.EXPIRED, FileStatus.DELETED):
        raise Conflict(f"This file is {file.status}; request a new upload URL.", code="file_not_pending")
    return file


def file_download_url(*, file: StoredFile) -> tuple[str, int]:
    """A presigned GET URL for an available file and its lifetime in seconds (no network call).

    Raises Conflict (409, `file_not_available`) for a file in any other state.
    """
    if file.status != FileStatus.AVAILABLE:
        raise Conflict(f"This file is {file.status}, not available.", code="file_not_available")
    expires_in = _presign_expiry()
    url = s3.presign_get(
        binding=file.binding,
        key=file.object_key,
        file_name=file.file_name,
        content_type=file.content_type,
        expires_in=expires_in,
    )
    return url, expires_in


def file_delete(*, file: StoredFile, actor: Actor) -> StoredFile:
    """Mark the file deleted now; a worker removes the object. Deleting again is harmless."""
    with transaction.atomic():
        now = timezone.now()
        claimed = (
            StoredFile.objects.filter(pk=file.pk)
            .exclude(status=FileStatus.DELETED)
            .update(status=FileStatus.DELETED, deleted_at=now, updated_at=now, verify_lease_until=None)
        )
        if claimed:
            audit_record(
                org=file.org, actor=actor, action="file.deleted", target=file, data={"fileName": file.file_name}
            )
            announce(file, FileStatus.DELETED)
            enqueue_remove(file.pk)
    file.refresh_from_db()
    return file
