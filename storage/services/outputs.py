"""Files a job uploads from its step (outputs), storage side: sign a PUT that carries the declared
SHA-256, then check the object at once when the uploader says it is done.

Unlike a browser or CI upload (`files`), the check is synchronous: the agent is waiting to
print the file's id, and a step must fail when its file did not arrive intact. Which job
produced the file is kept as a plain id (`StoredFile.job_id`): storage never imports triggers.
"""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deplite.errors import Conflict, PayloadTooLarge, ServiceUnavailable
from orgs.actors import Actor
from orgs.models import Organization
from orgs.services import audit_record

from .. import names, s3
from ..models import FileStatus, StorageBinding, StoredFile
from .files import _presign_expiry, announce, enqueue_remove


def output_presign_upload(
    *,
    org: Organization,
    binding: StorageBinding,
    job_id: uuid.UUID,
    actor: Actor,
    file_name: str,
    content_type: str,
    size: int,
    sha256: str,
) -> tuple[StoredFile, str, dict[str, str]]:
    """Register a pending output file of `job_id` and sign its PUT (no network call).

    The PUT's Content-Length and `x-amz-checksum-sha256` are signed: S3 refuses a body of another
    size or digest. Returns (file, upload_url, every header the PUT must send). The caller holds
    the transaction (it links the file to its job in the same one).
    """
    if size > settings.DEPLITE_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"size: files may be at most {settings.DEPLITE_MAX_UPLOAD_BYTES} bytes.",
            code="file_too_large",
            details={"maxBytes": settings.DEPLITE_MAX_UPLOAD_BYTES},
        )
    file_id = uuid.uuid4()
    key = names.object_key(prefix=binding.prefix, org_id=org.pk, file_id=file_id, file_name=file_name)
    sha256_b64 = base64.b64encode(bytes.fromhex(sha256)).decode()
    upload_url = s3.presign_put(
        binding=binding, key=key, size=size, expires_in=_presign_expiry(), sha256_b64=sha256_b64
    )
    file = StoredFile.objects.create(
        id=file_id,
        org=org,
        binding=binding,
        file_name=file_name,
        content_type=content_type,
        declared_size=size,
        sha256=sha256,
        job_id=job_id,
        object_key=key,
        **actor.stamp(),
    )
    audit_record(
        org=org,
        actor=actor,
        action="file.upload_started",
        target=file,
        data={"fileName": file_name, "bindingId": str(binding.pk), "size": size, "jobId": str(job_id)},
    )
    headers = {"Content-Type": content_type, "Content-Length": str(size), "x-amz-checksum-sha256": sha256_b64}
    return file, upload_url, headers


def output_complete(*, file: StoredFile, actor: Actor) -> StoredFile:
    """Check the uploaded object now (HEAD: size, and the SHA-256 the store kept) and settle the file.

    Available → returned as is (a repeated call changes nothing). A missing object, another size or
    another digest fails the file (the object, if any, is removed) and raises Conflict
    `upload_incomplete` saying why. A store that keeps no checksum with its objects (some
    S3-compatibles) gets the object read once and hashed instead. A storage error that may pass
    leaves the file pending (the agent may call again): ServiceUnavailable `storage_unavailable`.
    """
    if file.status == FileStatus.AVAILABLE:
        return file
    if file.status != FileStatus.PENDING:
        raise Conflict(
            f"This file is {file.status}: {file.failure_reason or 'upload it again.'}".strip(),
            code="upload_incomplete",
            details={"fileId": str(file.pk), "status": file.status},
        )
    try:
        info, found = _inspect(file)
    except s3.StorageError as exc:
        if not exc.permanent:
            # Nothing is settled: the file stays pending and the agent may call complete again.
            raise ServiceUnavailable(
                f"Could not check the upload: {exc.message} Try again shortly.", code="storage_unavailable"
            ) from None
        info, found, reason, missing = None, "", f"Could not check the upload: {exc.message}", False
    else:
        reason, missing = _mismatch(file, info, found), info is None
    now = timezone.now()
    with transaction.atomic():
        if reason:
            done = StoredFile.objects.filter(pk=file.pk, status=FileStatus.PENDING).update(
                status=FileStatus.FAILED,
                failure_reason=reason[:500],
                completed_at=now,
                updated_at=now,
                # Nothing to remove when no object was found, so no sweep chases it.
                **({"object_removed_at": now} if missing else {}),
            )
            if done:
                audit_record(org=file.org, actor=actor, action="file.failed", target=file, data={"reason": reason})
                announce(file, FileStatus.FAILED)
                if not missing:
                    enqueue_remove(file.pk)
        else:
            done = StoredFile.objects.filter(pk=file.pk, status=FileStatus.PENDING).update(
                status=FileStatus.AVAILABLE,
                size=info.size,
                etag=info.etag,
                stored_content_type=info.content_type,
                completed_at=now,
                verified_at=now,
                updated_at=now,
            )
            if done:
                audit_record(
                    org=file.org,
                    actor=actor,
                    action="file.output_uploaded",
                    target=file,
                    data={
                        "fileName": file.file_name,
                        "size": info.size,
                        "sha256": file.sha256,
                        "jobId": str(file.job_id),
                    },
                )
                announce(file, FileStatus.AVAILABLE)
    file.refresh_from_db()
    if file.status != FileStatus.AVAILABLE:
        raise Conflict(
            file.failure_reason or f"This file is {file.status}.",
            code="upload_incomplete",
            details={"fileId": str(file.pk), "status": file.status},
        )
    return file


def _inspect(file: StoredFile) -> tuple[s3.ObjectInfo | None, str]:
    """What the bucket holds for `file`: its HeadObject answer and the content's hex SHA-256 (the
    checksum the store kept, or, when it keeps none, the object read once and hashed)."""
    info = s3.head_object(binding=file.binding, key=file.object_key, checksums=True)
    if info is None or info.size != file.declared_size:
        return info, ""
    if info.sha256_b64:
        return info, base64.b64decode(info.sha256_b64).hex()
    return info, s3.object_sha256(binding=file.binding, key=file.object_key) or ""


def _mismatch(file: StoredFile, info: s3.ObjectInfo | None, found: str) -> str:
    """Why the object is not the declared file, or "" when it is."""
    if info is None:
        return "No object was found in the bucket: PUT the file to uploadUrl before calling complete."
    if info.size != file.declared_size:
        return f"The object is {info.size} bytes but {file.declared_size} were declared; it was removed."
    if found != file.sha256:
        return f"The object's SHA-256 is {found}, not the declared {file.sha256}; it was removed."
    return ""


# Outputs expired per binding and run of the beat task; the next run takes the rest.
EXPIRE_BATCH = 500


def outputs_expire() -> int:
    """Beat task body: job outputs older than their binding's `output_retention_days` become `expired`
    and their objects are removed (after commit, by `remove_object`). Nothing else is touched:
    input files, and files of bindings without retention, stay. Safe to run twice."""
    now = timezone.now()
    expired = 0
    for binding in StorageBinding.objects.filter(output_retention_days__isnull=False).select_related("org"):
        cutoff = now - timedelta(days=binding.output_retention_days)
        due = StoredFile.objects.filter(
            binding=binding, job_id__isnull=False, status=FileStatus.AVAILABLE, created_at__lt=cutoff
        ).order_by("created_at")[:EXPIRE_BATCH]
        for file in due:
            with transaction.atomic():
                if not StoredFile.objects.filter(pk=file.pk, status=FileStatus.AVAILABLE).update(
                    status=FileStatus.EXPIRED, updated_at=now
                ):
                    continue
                expired += 1
                audit_record(
                    org=binding.org,
                    actor=Actor.system("retention"),
                    action="file.expired",
                    target=file,
                    data={
                        "fileName": file.file_name,
                        "jobId": str(file.job_id),
                        "retentionDays": binding.output_retention_days,
                    },
                )
                announce(file, FileStatus.EXPIRED)
                enqueue_remove(file.pk)
    return expired
