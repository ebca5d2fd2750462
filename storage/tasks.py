"""Celery tasks for storage. They take ids, re-read the row and are safe to run twice
(the services they call claim rows with conditional updates).

A bucket that cannot be reached (s3.StorageError, not permanent) is retried by Celery
with exponential backoff and jitter (10 s, 20 s, 40 s … capped at 5 min), so a storage
outage does not make every waiting file hit the bucket in the same second when it returns.
"""

from __future__ import annotations

import logging

from celery import shared_task

from deplite import metrics

from . import s3, services

logger = logging.getLogger(__name__)

RETRY_POLICY = {
    "autoretry_for": (s3.StorageError,),
    "retry_backoff": 10,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
    "acks_late": True,
}


@shared_task(**RETRY_POLICY)
def verify_file(file_id: str) -> None:
    """HeadObject an uploaded file and mark it available or failed.

    If the retries run out the file stays `verifying`; the sweeper enqueues it again and
    file_verify fails it for good after MAX_VERIFY_ATTEMPTS.
    """
    try:
        services.file_verify(file_id=file_id)
    except s3.StorageError as exc:
        logger.warning("Verifying file %s: storage not reachable (%s); will retry", file_id, exc.code)
        metrics.UPLOAD_VERIFICATIONS.labels(outcome="retried").inc()
        raise


@shared_task(**RETRY_POLICY)
def remove_object(file_id: str) -> None:
    """Delete the bucket object of a deleted, expired or rejected file."""
    try:
        services.file_remove_object(file_id=file_id)
    except s3.StorageError as exc:
        if not exc.permanent:
            raise
        # The bucket refuses (key revoked, bucket gone): retrying now will not help.
        # The sweeper tries again for a few days in case the binding is fixed.
        logger.warning("Removing the object of file %s failed: %s", file_id, exc.code)


@shared_task(acks_late=True)
def sweep_files() -> dict[str, int]:
    """Beat: re-enqueue lost verifications, expire abandoned uploads, retry removals."""
    result = services.files_sweep()
    if any(result.values()):
        logger.info("Storage sweep: %s", result)
    return result


@shared_task(acks_late=True)
def expire_outputs() -> int:
    """Beat: job outputs past their binding's retention become expired and their objects go."""
    expired = services.outputs_expire()
    if expired:
        logger.info("Output retention: %s files expired", expired)
    return expired
