"""A canary secret key never leaves the database: not in API responses, admin pages,
log lines or Celery messages."""

from __future__ import annotations

import json
import logging

import pytest
import requests
from celery.signals import before_task_publish

from deplite.celery import app as celery_app
from storage.models import StorageBinding

from .conftest import bindings_url, files_url

pytestmark = pytest.mark.django_db

CANARY = "CANARY-s3cr3t-7f1e9b2c"


@pytest.fixture
def published():
    """The body and headers of every Celery message actually published to the broker."""
    messages: list[str] = []

    def record(sender=None, body=None, headers=None, properties=None, **kwargs):
        messages.append(json.dumps({"task": sender, "body": body, "headers": headers}, default=str))

    before_task_publish.connect(record, weak=False)
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False  # publish for real (memory:// or Redis)
    yield messages
    celery_app.conf.task_always_eager = old
    before_task_publish.disconnect(record)


def test_canary_secret_appears_in_no_response_page_log_or_message(
    api, client, owner, org_a, moto_url, bucket, allow_private, caplog, published, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)  # botocore, urllib3, django, celery: everything
    api.as_user(owner)
    seen: list[str] = []

    def call(response):
        seen.append(response.content.decode("utf-8", "replace"))
        return response

    created = call(
        api.post(
            bindings_url(org_a),
            {
                "name": "canary",
                "endpoint": moto_url,
                "region": "us-east-1",
                "bucket": bucket,
                "accessKey": "AKIACANARY",
                "secretKey": CANARY,
                "pathStyle": True,
            },
            format="json",
        )
    ).json()
    binding_id = created["id"]
    call(api.get(bindings_url(org_a)))
    call(api.get(bindings_url(org_a, binding_id)))
    call(
        api.patch(
            bindings_url(org_a, binding_id), {"bucket": bucket, "secretKey": CANARY, "prefix": "x/"}, format="json"
        )
    )
    call(api.patch(bindings_url(org_a, binding_id), {"accessKey": "AKIAOTHER"}, format="json"))  # refused
    call(api.post(bindings_url(org_a, binding_id, "test")))
    presigned = call(
        api.post(files_url(org_a, "presign-upload"), {"bindingId": binding_id, "fileName": "a.txt"}, format="json")
    ).json()
    requests.put(presigned["uploadUrl"], data=b"payload", timeout=10)
    with django_capture_on_commit_callbacks(execute=True):
        call(api.post(files_url(org_a, presigned["fileId"], "complete")))
    call(api.get(files_url(org_a, presigned["fileId"])))
    call(api.get(bindings_url(org_a) + "/does-not-exist"))
    call(api.get(f"/api/orgs/{org_a.slug}/audit"))

    # The admin, as a superuser.
    owner.is_staff = owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    for url in (
        "/admin/storage/storagebinding/",
        f"/admin/storage/storagebinding/{binding_id}/change/",
        "/admin/storage/storedfile/",
        f"/admin/storage/storedfile/{presigned['fileId']}/change/",
    ):
        page = client.get(url)
        assert page.status_code == 200, url
        seen.append(page.content.decode())
    assert "•••••••• (set)" in seen[-3]

    assert published, "the complete call should have published a verification task"
    assert StorageBinding.objects.get(pk=binding_id).secret_key == CANARY  # it was stored
    log_text = "\n".join(r.getMessage() + " " + repr(r.args) for r in caplog.records)
    for where, text in [("responses and pages", "\n".join(seen)), ("logs", log_text), ("celery", "\n".join(published))]:
        assert CANARY not in text, f"the secret leaked into {where}"


def test_binding_repr_and_str_do_not_show_the_secret(org_a):
    binding = StorageBinding(org=org_a, name="n", bucket="b", secret_key=CANARY)
    assert CANARY not in repr(binding) and CANARY not in str(binding)
