"""Worker side: verification claims, retries and give-up, the sweeper that survives lost
enqueues and expires abandoned uploads, and the file_status_changed signal."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from storage import s3, services, tasks
from storage.models import FileStatus, StoredFile
from storage.signals import file_status_changed
from tests.factories import StorageBindingFactory, StoredFileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def announcements():
    seen = []

    def receiver(sender, **kwargs):
        seen.append((kwargs["file_id"], kwargs["status"]))

    file_status_changed.connect(receiver, weak=False)
    yield seen
    file_status_changed.disconnect(receiver)


def _uploaded(binding, s3_admin, body=b"data", **fields) -> StoredFile:
    file = StoredFileFactory(org=binding.org, binding=binding, **fields)
    s3_admin.put_object(Bucket=binding.bucket, Key=file.object_key, Body=body)
    return file


def test_lost_verification_is_recovered_by_the_sweeper(binding, s3_admin, django_capture_on_commit_callbacks):
    # complete committed but its task never reached a worker.
    file = _uploaded(binding, s3_admin, status=FileStatus.VERIFYING, completed_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.sweep_files.delay().get()
    assert result["requeued"] == 1
    file.refresh_from_db()
    assert file.status == FileStatus.AVAILABLE and file.size == 4


def test_sweeper_leaves_a_file_whose_worker_holds_the_lease(binding, s3_admin):
    file = _uploaded(
        binding,
        s3_admin,
        status=FileStatus.VERIFYING,
        completed_at=timezone.now() - timedelta(minutes=5),
        verify_lease_until=timezone.now() + timedelta(minutes=1),
    )
    assert services.files_sweep()["requeued"] == 0
    services.file_verify(file_id=str(file.pk))  # a second copy of the task: claims nothing
    file.refresh_from_db()
    assert file.status == FileStatus.VERIFYING and file.verify_attempts == 0


def test_verifying_twice_settles_once(binding, s3_admin, announcements, django_capture_on_commit_callbacks):
    file = _uploaded(binding, s3_admin, status=FileStatus.VERIFYING, completed_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        services.file_verify(file_id=str(file.pk))
        services.file_verify(file_id=str(file.pk))
    file.refresh_from_db()
    assert file.status == FileStatus.AVAILABLE and file.verify_attempts == 1
    assert announcements == [(file.pk, "available")]


def test_never_completed_upload_expires_and_its_object_is_removed(
    binding, s3_admin, announcements, django_capture_on_commit_callbacks
):
    old = timezone.now() - timedelta(seconds=django_settings.DEPLITE_UPLOAD_EXPIRY + 60)
    file = _uploaded(binding, s3_admin, status=FileStatus.PENDING, created_at=old)
    fresh = StoredFileFactory(org=binding.org, binding=binding, status=FileStatus.PENDING)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.files_sweep()["expired"] == 1
    file.refresh_from_db()
    assert file.status == FileStatus.EXPIRED and file.object_removed_at is not None
    assert s3_admin.list_objects_v2(Bucket=binding.bucket).get("KeyCount", 0) == 0
    assert StoredFile.objects.get(pk=fresh.pk).status == FileStatus.PENDING
    assert announcements == [(file.pk, "expired")]


def test_sweeper_retries_object_removal_that_was_lost(binding, s3_admin):
    file = _uploaded(binding, s3_admin, status=FileStatus.DELETED, updated_at=timezone.now() - timedelta(minutes=30))
    assert services.files_sweep()["removals"] == 1
    assert StoredFile.objects.get(pk=file.pk).object_removed_at is not None
    assert s3_admin.list_objects_v2(Bucket=binding.bucket).get("KeyCount", 0) == 0


@pytest.fixture
def dead_binding(org_a, allow_private):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return StorageBindingFactory(org=org_a, endpoint=f"http://127.0.0.1:{port}")


def test_unreachable_storage_is_retried_then_failed_after_the_last_attempt(
    dead_binding, announcements, django_capture_on_commit_callbacks
):
    file = StoredFileFactory(org=dead_binding.org, binding=dead_binding, status=FileStatus.VERIFYING)
    with pytest.raises(s3.StorageError) as raised:
        services.file_verify(file_id=str(file.pk))
    assert raised.value.permanent is False and raised.value.code == "endpoint_unreachable"
    file.refresh_from_db()
    # Still verifying, lease released so the retry (or the sweeper) can claim it.
    assert file.status == FileStatus.VERIFYING and file.verify_lease_until is None and file.verify_attempts == 1

    StoredFile.objects.filter(pk=file.pk).update(verify_attempts=services.MAX_VERIFY_ATTEMPTS - 1)
    with django_capture_on_commit_callbacks(execute=True):
        services.file_verify(file_id=str(file.pk))
    file.refresh_from_db()
    assert file.status == FileStatus.FAILED
    assert "could not be reached" in file.failure_reason
    assert announcements == [(file.pk, "failed")]


def test_a_failing_signal_receiver_does_not_undo_the_change(binding, s3_admin, django_capture_on_commit_callbacks):
    def broken(sender, **kwargs):
        raise RuntimeError("listener bug")

    file_status_changed.connect(broken, weak=False)
    try:
        file = _uploaded(binding, s3_admin, status=FileStatus.VERIFYING, completed_at=timezone.now())
        with django_capture_on_commit_callbacks(execute=True):
            services.file_verify(file_id=str(file.pk))
    finally:
        file_status_changed.disconnect(broken)
    assert StoredFile.objects.get(pk=file.pk).status == FileStatus.AVAILABLE


def test_beat_schedule_runs_the_sweeper():
    entry = django_settings.CELERY_BEAT_SCHEDULE["storage-sweep-files"]
    assert entry["task"] == tasks.sweep_files.name


def test_selector_file_get_is_scoped_to_the_org(org_a, org_b, binding):
    from storage.selectors import file_get

    file = StoredFileFactory(org=org_a, binding=binding)
    assert file_get(org=org_a, file_id=str(file.pk)) == file
    assert file_get(org=org_b, file_id=file.pk) is None
    assert file_get(org=org_a, file_id="nope") is None
    assert file_get(org=org_a, file_id=None) is None


def test_beat_schedule_runs_the_output_retention():
    entry = django_settings.CELERY_BEAT_SCHEDULE["storage-expire-outputs"]
    assert entry["task"] == tasks.expire_outputs.name
