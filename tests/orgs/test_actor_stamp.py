"""Who did it is recorded one way: the actor's kind, id and label (`Actor.stamp()`) on the
audit event and on the job, file or trigger the actor created, whoever the actor is."""

from __future__ import annotations

import pytest

from orgs.models import AuditEvent
from storage.models import StoredFile
from triggers.models import Job, Trigger

from ..factories import StorageBindingFactory, TriggerFactory

pytestmark = pytest.mark.django_db


def _stamp(row) -> tuple[str, str, str]:
    return row.actor_kind, row.actor_id, row.actor_label


def _audit_stamp(action: str) -> tuple[str, str, str]:
    return _stamp(AuditEvent.objects.get(action=action))


def test_a_trigger_created_by_a_user_records_the_user_like_its_audit_event(api, admin_user):
    body = {"name": "deploy-prod", "workflow": "deploy"}
    response = api.as_user(admin_user).post("/api/orgs/acme/triggers", body, format="json")
    assert response.status_code == 201, response.content
    trigger = Trigger.objects.get(pk=response.json()["id"])
    assert _stamp(trigger) == ("user", str(admin_user.pk), admin_user.email)
    assert _audit_stamp("trigger.created") == _stamp(trigger)


def test_a_job_run_with_a_token_records_the_token_like_its_audit_event(api, org_a, org_token):
    token, raw = org_token
    trigger = TriggerFactory(org=org_a, workflow="deploy")
    response = api.as_token(raw).post(f"/triggers/{trigger.pk}/run", {"ref": "main"}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["jobId"])
    assert _stamp(job) == ("token", str(token.pk), f"{token.name} ({token.prefix}…)")
    assert _audit_stamp("job.created") == _stamp(job)


def test_a_file_registered_by_a_user_records_the_user_like_its_audit_event(api, owner, org_a, settings):
    settings.DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS = True
    binding = StorageBindingFactory(org=org_a)
    body = {"bindingId": str(binding.pk), "fileName": "app.tar.gz", "contentType": "application/gzip"}
    response = api.as_user(owner).post(f"/api/orgs/{org_a.slug}/files/presign-upload", body, format="json")
    assert response.status_code == 201, response.content
    file = StoredFile.objects.get(pk=response.json()["fileId"])
    assert _stamp(file) == ("user", str(owner.pk), owner.email)
    assert _audit_stamp("file.upload_started") == _stamp(file)
    # The API's createdBy says the same.
    created_by = api.get(f"/api/orgs/{org_a.slug}/files/{file.pk}").json()["createdBy"]
    assert (created_by["kind"], created_by["id"], created_by["label"]) == _stamp(file)
