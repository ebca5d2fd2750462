"""Files, worker side: verify an uploaded object, remove objects, the sweeper.

These claim rows with conditional updates so a task that runs twice, or alongside a
re-enqueued copy, changes nothing the second time.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from deplite import metrics
from deplite.background import enqueue_now
from orgs.actors import Actor
from orgs.services import audit_record

from .. import s3
from ..models import REMOVABLE_STATUSES, FileStatus, StoredFile
from .files import announce, enqueue_remove

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
SWEEP_BATCH = 500


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
            announce(file, status)
            transaction.on_commit(metrics.UPLOAD_VERIFICATIONS.labels(outcome=status).inc)
    return bool(done)


def _fail(file: StoredFile, reason: str, *, remove_object: bool) -> None:
    # A failure with nothing to remove is marked removed at once, so no sweep chases it.
    extra = {} if remove_object else {"object_removed_at": timezone.now()}
    with transaction.atomic():
        if _finish_verification(file, FileStatus.FAILED, failure_reason=reason[:500], **extra) and remove_object:
            enqueue_remove(file.pk)


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
    from ..tasks import remove_object, verify_file

    # Outside any transaction: sent now, each send bounded (deplite.background).
    for pk in stuck:
        enqueue_now(verify_file, str(pk))

    expired = 0
    cutoff = now - timedelta(seconds=settings.DEPLITE_UPLOAD_EXPIRY)
    for file in StoredFile.objects.select_related("org").filter(status=FileStatus.PENDING, created_at__lt=cutoff)[
        :SWEEP_BATCH
    ]:
        with transaction.atomic():
            if StoredFile.objects.filter(pk=file.pk, status=FileStatus.PENDING).update(
                status=FileStatus.EXPIRED, updated_at=now
            ):
                expired += 1
                audit_record(org=file.org, actor=Actor.system("sweeper"), action="file.expired", target=file, data={})
                announce(file, FileStatus.EXPIRED)
                enqueue_remove(file.pk)

    orphans = list(
        StoredFile.objects.filter(
            status__in=REMOVABLE_STATUSES,
            object_removed_at__isnull=True,
            updated_at__lt=now - VERIFY_GRACE * 5,
            updated_at__gt=now - REMOVAL_RETRY_WINDOW,
        ).values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for pk in orphans:
        enqueue_now(remove_object, str(pk))
    return {"requeued": len(stuck), "expired": expired, "removals": len(orphans)}
