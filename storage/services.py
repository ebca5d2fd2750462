"""Writes for storage bindings and files.

API-facing services are keyword-only, run in one transaction, write their audit event and
enqueue worker tasks with `transaction.on_commit`. The worker-side services (`file_verify`,
`file_remove_object`, `files_sweep`) claim rows with conditional updates so a task that
runs twice, or alongside a re-enqueued copy, changes nothing the second time.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from deplite.api.errors import Conflict, PayloadTooLarge, ValidationFailed
from orgs.models import Organization
from orgs.scoping import Actor
from orgs.services import audit_record

from . import endpoints, names, s3
from .models import FileStatus, StorageBinding, StoredFile
from .signals import file_status_changed

logger = logging.getLogger(__name__)

# A verification task holds its file this long; past it, the sweeper may hand the file
# to another worker (HeadObject with 5 s connect / 30 s read timeouts and 3 attempts fits).
VERIFY_LEASE = timedelta(minutes=3)
# After this many tries that could not reach the bucket, a file is failed for good.
MAX_VERIFY_ATTEMPTS = 8
# The sweeper leaves a freshly completed file to the task enqueued with it for this long.
VERIFY_GRACE = timedelta(minutes=1)
# Object removals that keep failing (bucket gone, key revoked) are retried this long.
REMOVAL_RETRY_WINDOW = timedelta(days=7)
# SigV4 presigned URLs are valid for at most 7 days; S3 refuses longer ones.
MAX_PRESIGN_EXPIRY_SECONDS = 7 * 24 * 3600
SWEEP_BATCH = 500

LIVE_STATUSES = (FileStatus.PENDING, FileStatus.VERIFYING, FileStatus.AVAILABLE)
# Statuses whose bucket object must go.
REMOVABLE_STATUSES = (FileStatus.FAILED, FileStatus.EXPIRED, FileStatus.DELETED)
CREDENTIAL_FIELDS = ("endpoint", "region", "bucket", "access_key")
BINDING_FIELDS = ("name", "endpoint", "region", "bucket", "access_key", "secret_key", "path_style", "prefix")


def _presign_expiry() -> int:
    return max(1, min(int(settings.DEPLITE_PRESIGN_EXPIRY_SECONDS), MAX_PRESIGN_EXPIRY_SECONDS))


def _announce(file: StoredFile, status: str) -> None:
    """Send file_status_changed once the current transaction commits."""
    file_id, org_id = file.pk, file.org_id

    def send() -> None:
        for receiver, result in file_status_changed.send_robust(
            sender=StoredFile, file_id=file_id, org_id=org_id, status=status
        ):
            if isinstance(result, Exception):
                # One listener's failure must not stop the others; it is still an error.
                logger.error("file_status_changed receiver %r failed for file %s", receiver, file_id, exc_info=result)

    transaction.on_commit(send)


# --- bindings ------------------------------------------------------------------------------------


def binding_create(
    *,
    org: Organization,
    actor: Actor,
    name: str,
    endpoint: str,
    bucket: str,
    access_key: str,
    secret_key: str,
    region: str = "",
    path_style: bool = False,
    prefix: str = "",
) -> StorageBinding:
    """Create a binding. The endpoint must be one the server may connect to (storage.endpoints)."""
    endpoint = endpoints.validate_endpoint(endpoint)
    try:
        with transaction.atomic():
            binding = StorageBinding.objects.create(
                org=org,
                name=name,
                endpoint=endpoint,
                region=region,
                bucket=bucket,
                access_key=access_key,
                secret_key=secret_key,
                path_style=path_style,
                prefix=prefix,
                created_by=actor.user,
            )
            audit_record(
                org=org,
                actor=actor,
                action="storage_binding.created",
                target=binding,
                data={"name": name, "endpoint": endpoint, "bucket": bucket, "region": region},
            )
    except IntegrityError:
        raise Conflict("A storage binding with this name already exists.", code="name_taken") from None
    return binding


def binding_update(*, binding: StorageBinding, actor: Actor, **changes: Any) -> StorageBinding:
    """Change a binding. Pointing the stored key somewhere else (endpoint, bucket, region,
    access key) needs the secret sent again: a stolen session must not be able to send the
    stored secret to an endpoint of its choice."""
    unknown = set(changes) - set(BINDING_FIELDS)
    if unknown:
        raise ValueError(f"binding_update got unknown fields {sorted(unknown)}")
    if "endpoint" in changes:
        changes["endpoint"] = endpoints.validate_endpoint(changes["endpoint"])
    changed = {k: v for k, v in changes.items() if k == "secret_key" or getattr(binding, k) != v}
    if not changed:
        return binding
    moved = [k for k in CREDENTIAL_FIELDS if k in changed]
    if moved and "secret_key" not in changed:
        what = ", ".join(k.replace("_", " ") for k in moved)
        raise ValidationFailed(
            f"To change the {what}, send the secret key again.",
            code="secret_required",
            details={"fields": {"secret_key": [f"Required when changing the {what}."]}},
        )
    try:
        with transaction.atomic():
            for key, value in changed.items():
                setattr(binding, key, value)
            binding.updated_at = timezone.now()
            binding.save(update_fields=[*changed, "updated_at"])
            audit_record(
                org=binding.org,
                actor=actor,
                action="storage_binding.updated",
                target=binding,
                # Field names only: values may include the secret.
                data={"fields": sorted(changed)},
            )
    except IntegrityError:
        raise Conflict("A storage binding with this name already exists.", code="name_taken") from None
    return binding


def binding_delete(*, binding: StorageBinding, actor: Actor) -> None:
    """Delete a binding that no live file uses (the bucket's objects are the customer's)."""
    with transaction.atomic():
        if StoredFile.objects.filter(binding=binding, status__in=LIVE_STATUSES).exists():
            raise Conflict(
                "This binding still has files; delete them first.",
                code="binding_in_use",
            )
        audit_record(
            org=binding.org,
            actor=actor,
            action="storage_binding.deleted",
            target=binding,
            data={"name": binding.name, "bucket": binding.bucket},
        )
        binding_id = binding.pk
        binding.delete()
        transaction.on_commit(lambda: s3.forget(binding_id))


def binding_check(*, binding: StorageBinding) -> s3.CheckResult:
    """Test the binding against its bucket (HeadBucket). Network, so never inside a transaction."""
    return s3.check_binding(binding)


# --- files: API side --------------------------------------------------------------------------------


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
            file_id = str(file.pk)
            transaction.on_commit(lambda: _enqueue_verify(file_id))
    file.refresh_from_db()
    if file.status in (FileStatus.EXPIRED, FileStatus.DELETED):
        raise Conflict(f"This file is {file.status}; request a new upload URL.", code="file_not_pending")
    return file


def _enqueue_verify(file_id: str) -> None:
    from .tasks import verify_file

    verify_file.delay(file_id)


def _enqueue_remove(file_id: str) -> None:
    from .tasks import remove_object

    remove_object.delay(file_id)


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
            _announce(file, FileStatus.DELETED)
            file_id = str(file.pk)
            transaction.on_commit(lambda: _enqueue_remove(file_id))
    file.refresh_from_db()
    return file


# --- files: worker side ------------------------------------------------------------------------------


def _finish_verification(file: StoredFile, status: str, **fields: Any) -> bool:
    """verifying → `status`, once. True if this call made the change."""
    now = timezone.now()
    with transaction.atomic():
        done = StoredFile.objects.filter(pk=file.pk, status=FileStatus.VERIFYING).update(
            status=status, updated_at=now, verify_lease_until=None, **fields
        )
        if done:
            audit_record(
                org=file.org,
                actor=Actor.system("verifier"),
                action=f"file.{status}",
                target=file,
                data={"reason": fields.get("failure_reason", ""), "size": fields.get("size")},
            )
            _announce(file, status)
    return bool(done)


def _fail(file: StoredFile, reason: str, *, remove_object: bool) -> None:
    # A failure with nothing to remove is marked removed at once, so no sweep chases it.
    extra = {} if remove_object else {"object_removed_at": timezone.now()}
    with transaction.atomic():
        if _finish_verification(file, FileStatus.FAILED, failure_reason=reason[:500], **extra) and remove_object:
            file_id = str(file.pk)
            transaction.on_commit(lambda: _enqueue_remove(file_id))


def file_verify(*, file_id: str) -> None:
    """Check an uploaded object with HeadObject and settle the file: available or failed.

    Claims the file with a lease first (a copy of this task running at the same time
    returns at once). A storage error that may pass (unreachable, 5xx) releases the lease
    and is raised for the task to retry; anything else settles the file as failed.
    """
    now = timezone.now()
    claimed = (
        StoredFile.objects.filter(pk=file_id, status=FileStatus.VERIFYING)
        .filter(Q(verify_lease_until__isnull=True) | Q(verify_lease_until__lt=now))
        .update(verify_lease_until=now + VERIFY_LEASE, verify_attempts=F("verify_attempts") + 1)
    )
    if not claimed:
        return
    file = StoredFile.objects.select_related("binding", "org").get(pk=file_id)
    if file.verify_attempts > MAX_VERIFY_ATTEMPTS:
        # Earlier tries ended without a word (a worker killed mid-check): give up here too.
        _fail(file, f"Could not check the upload after {MAX_VERIFY_ATTEMPTS} tries.", remove_object=False)
        return
    try:
        info = s3.head_object(binding=file.binding, key=file.object_key)
    except s3.StorageError as exc:
        if exc.permanent:
            _fail(file, f"Could not check the upload: {exc.message}", remove_object=False)
            return
        if file.verify_attempts >= MAX_VERIFY_ATTEMPTS:
            _fail(
                file,
                f"Could not check the upload after {file.verify_attempts} tries: {exc.message}",
                remove_object=False,
            )
            return
        StoredFile.objects.filter(pk=file.pk, status=FileStatus.VERIFYING).update(verify_lease_until=None)
        raise
    except Exception as exc:
        # Not a storage answer (a bug, a library error): still bounded by the attempt cap,
        # or the sweeper would hand this file back forever.
        logger.exception("Verifying file %s failed unexpectedly (attempt %s)", file_id, file.verify_attempts)
        if file.verify_attempts >= MAX_VERIFY_ATTEMPTS:
            _fail(
                file,
                f"Could not check the upload after {file.verify_attempts} tries: an internal error "
                f"({type(exc).__name__}).",
                remove_object=False,
            )
            return
        StoredFile.objects.filter(pk=file.pk, status=FileStatus.VERIFYING).update(verify_lease_until=None)
        raise
    limit = settings.DEPLITE_MAX_UPLOAD_BYTES
    if info is None:
        _fail(
            file,
            "No object was found in the bucket: PUT the file to uploadUrl before calling complete.",
            remove_object=False,
        )
    elif info.size > limit:
        _fail(
            file,
            f"The object is {info.size} bytes, larger than the limit of {limit} bytes; it was removed.",
            remove_object=True,
        )
    elif file.declared_size is not None and info.size != file.declared_size:
        _fail(
            file,
            f"The object is {info.size} bytes but {file.declared_size} were declared; it was removed.",
            remove_object=True,
        )
    else:
        _finish_verification(
            file,
            FileStatus.AVAILABLE,
            size=info.size,
            etag=info.etag,
            stored_content_type=info.content_type,
            verified_at=timezone.now(),
            failure_reason="",
        )


def file_remove_object(*, file_id: str) -> None:
    """Delete the bucket object of a deleted, expired or rejected file. Safe to repeat.

    Raises s3.StorageError when the bucket cannot be reached (the task retries; the sweeper
    tries again later if all retries fail).
    """
    file = (
        StoredFile.objects.select_related("binding")
        .filter(pk=file_id, status__in=REMOVABLE_STATUSES, object_removed_at__isnull=True)
        .first()
    )
    if file is None:
        return
    s3.delete_object(binding=file.binding, key=file.object_key)
    StoredFile.objects.filter(pk=file.pk, object_removed_at__isnull=True).update(object_removed_at=timezone.now())


def files_sweep() -> dict[str, int]:
    """Beat task body: recover from lost enqueues and expire abandoned uploads.

    - files `verifying` whose task was lost (no live lease, past a grace period) are
      enqueued again;
    - `pending` files older than DEPLITE_UPLOAD_EXPIRY become `expired` and their object
      (if the PUT happened without a complete) is removed;
    - objects of deleted/expired/failed files whose removal did not happen are retried.
    """
    now = timezone.now()
    stuck = list(
        StoredFile.objects.filter(status=FileStatus.VERIFYING, completed_at__lt=now - VERIFY_GRACE)
        .filter(Q(verify_lease_until__isnull=True) | Q(verify_lease_until__lt=now))
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for pk in stuck:
        _enqueue_verify(str(pk))

    expired = 0
    cutoff = now - settings.DEPLITE_UPLOAD_EXPIRY
    for file in StoredFile.objects.select_related("org").filter(status=FileStatus.PENDING, created_at__lt=cutoff)[
        :SWEEP_BATCH
    ]:
        with transaction.atomic():
            if StoredFile.objects.filter(pk=file.pk, status=FileStatus.PENDING).update(
                status=FileStatus.EXPIRED, updated_at=now
            ):
                expired += 1
                audit_record(org=file.org, actor=Actor.system("sweeper"), action="file.expired", target=file, data={})
                _announce(file, FileStatus.EXPIRED)
                file_id = str(file.pk)
                transaction.on_commit(lambda file_id=file_id: _enqueue_remove(file_id))

    orphans = list(
        StoredFile.objects.filter(
            status__in=REMOVABLE_STATUSES,
            object_removed_at__isnull=True,
            updated_at__lt=now - VERIFY_GRACE * 5,
            updated_at__gt=now - REMOVAL_RETRY_WINDOW,
        ).values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for pk in orphans:
        _enqueue_remove(str(pk))
    return {"requeued": len(stuck), "expired": expired, "removals": len(orphans)}
