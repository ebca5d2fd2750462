"""Background work with the broker down: a committed write stays a 2xx and its row stays.

The broker here is a closed local port (connection refused, a Redis that died) or a
listener whose accept queue is full (the kernel drops the connection attempt, as with a
host that is gone: the connect timeout ends it). Each request below commits, then really tries to publish its task (eager mode off,
on-commit callbacks run) and must answer as if the broker were up; the sweepers pick up
what was never sent. The time each request took is printed (`-s`) for the record, never
asserted.
"""

from __future__ import annotations

import time

import pytest

from orgs.models import Invitation
from storage.models import FileStatus, StoredFile
from triggers.models import Job, JobStatus

from .factories import StorageBindingFactory, StoredFileFactory, TriggerFactory

pytestmark = pytest.mark.django_db


def _timed(call, commits):
    started = time.monotonic()
    with commits(execute=True) as callbacks:
        response = call()
    print(f"\n{response.request['PATH_INFO']}: {1000 * (time.monotonic() - started):.0f} ms with the broker down")
    assert callbacks, "the request enqueued nothing after commit"
    return response


def _enqueue_failures(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Could not enqueue")]


def test_a_run_answers_202_and_keeps_its_job_when_the_broker_is_down(
    api, org_a, org_token, dead_broker, django_capture_on_commit_callbacks
):
    trigger = TriggerFactory(org=org_a, workflow="deploy")
    api.as_token(org_token[1])
    response = _timed(
        lambda: api.post(f"/triggers/{trigger.pk}/run", {"ref": "main"}, format="json"),
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["jobId"])
    assert job.status == JobStatus.QUEUED
    assert [m for m in _enqueue_failures(dead_broker) if "job_dispatch" in m]


def test_completing_an_upload_answers_and_leaves_the_file_verifying_when_the_broker_is_down(
    api, owner, org_a, dead_broker, django_capture_on_commit_callbacks
):
    binding = StorageBindingFactory(org=org_a)
    file = StoredFileFactory(org=org_a, binding=binding, status=FileStatus.PENDING)
    api.as_user(owner)
    response = _timed(
        lambda: api.post(f"/api/orgs/{org_a.slug}/files/{file.pk}/complete"), django_capture_on_commit_callbacks
    )
    assert response.status_code == 202, response.content
    # The sweeper re-enqueues a verifying file whose task never arrived.
    assert StoredFile.objects.get(pk=file.pk).status == FileStatus.VERIFYING
    assert [m for m in _enqueue_failures(dead_broker) if "verify_file" in m]


def test_deleting_a_file_answers_and_marks_it_deleted_when_the_broker_is_down(
    api, owner, org_a, dead_broker, django_capture_on_commit_callbacks
):
    binding = StorageBindingFactory(org=org_a)
    file = StoredFileFactory(org=org_a, binding=binding, status=FileStatus.AVAILABLE)
    api.as_user(owner)
    response = _timed(lambda: api.delete(f"/api/orgs/{org_a.slug}/files/{file.pk}"), django_capture_on_commit_callbacks)
    assert response.status_code in (200, 204), response.content
    stored = StoredFile.objects.get(pk=file.pk)
    assert stored.status == FileStatus.DELETED and stored.object_removed_at is None
    assert [m for m in _enqueue_failures(dead_broker) if "remove_object" in m]


def test_inviting_answers_201_and_keeps_the_invitation_when_the_broker_is_down(
    api, owner, org_a, dead_broker, django_capture_on_commit_callbacks
):
    api.as_user(owner)
    response = _timed(
        lambda: api.post(
            f"/api/orgs/{org_a.slug}/members", {"email": "new@acme.test", "role": "member"}, format="json"
        ),
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 201, response.content
    assert Invitation.objects.filter(org=org_a, email="new@acme.test", accepted_at=None).exists()
    assert [m for m in _enqueue_failures(dead_broker) if "send_invitation_email" in m]
