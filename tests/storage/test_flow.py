"""The docs' whole upload → complete → verify → download flow against a real S3 server
(moto over HTTP) with real boto3 and real HTTP PUTs to the presigned URL."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from orgs.models import AuditEvent
from storage.models import FileStatus, StoredFile
from storage.signals import file_status_changed
from tests.factories import StoredFileFactory

from .conftest import assert_error_shape, files_url

pytestmark = pytest.mark.django_db

CONTENT = b"\x1f\x8b" + b"pretend this is a gzip tarball " * 100


def _presign(api, org, binding, **extra):
    # Sent exactly like the docs' curl: JSON with no JSON Content-Type.
    body = json.dumps(
        {"bindingId": str(binding.pk), "fileName": "app-abc123.tar.gz", "contentType": "application/gzip", **extra}
    )
    response = api.generic(
        "POST", files_url(org, "presign-upload"), body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def announcements():
    seen = []

    def receiver(sender, **kwargs):
        seen.append((kwargs["file_id"], kwargs["org_id"], kwargs["status"]))

    file_status_changed.connect(receiver, weak=False)
    yield seen
    file_status_changed.disconnect(receiver)


@pytest.mark.parametrize(
    "put_headers", [{}, {"Content-Type": "application/gzip"}], ids=["no-content-type", "content-type"]
)
def test_docs_flow_uploads_verifies_and_downloads_the_same_bytes(
    api, owner, org_a, binding, put_headers, s3_admin, django_capture_on_commit_callbacks, announcements
):
    api.as_user(owner)
    presigned = _presign(api, org_a, binding)
    assert presigned["method"] == "PUT"
    assert presigned["expiresInSeconds"] == 900
    assert presigned["headers"] == {"Content-Type": "application/gzip"}

    put = requests.put(presigned["uploadUrl"], data=CONTENT, headers=put_headers, timeout=10)
    assert put.status_code == 200, put.text

    with django_capture_on_commit_callbacks(execute=True):
        response = api.generic("POST", files_url(org_a, presigned["fileId"], "complete"), "", content_type="")
    assert response.status_code == 202
    assert response.json() == {"fileId": presigned["fileId"], "status": "verifying"}

    file = StoredFile.objects.get(pk=presigned["fileId"])
    assert file.status == FileStatus.AVAILABLE
    assert file.size == len(CONTENT)
    assert file.etag and file.verified_at is not None
    assert file.object_key == f"deplite/{org_a.pk}/{file.pk}/app-abc123.tar.gz"
    assert announcements == [(file.pk, org_a.pk, "available")]

    detail = api.get(files_url(org_a, file.pk)).json()
    assert detail["status"] == "available" and detail["size"] == len(CONTENT)

    download = api.get(files_url(org_a, file.pk, "download-url"))
    assert download.status_code == 200
    assert download.json()["expiresInSeconds"] == 900
    got = requests.get(download.json()["downloadUrl"], timeout=10)
    assert got.status_code == 200
    assert got.content == CONTENT
    assert got.headers["Content-Type"] == "application/gzip"
    assert got.headers["Content-Disposition"] == 'attachment; filename="app-abc123.tar.gz"'


def test_presigned_put_signs_only_host_and_never_content_type(api, owner, org_a, binding):
    query = parse_qs(urlsplit(_presign(api.as_user(owner), org_a, binding)["uploadUrl"]).query)
    assert query["X-Amz-SignedHeaders"] == ["host"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "/ap-northeast-2/s3/aws4_request" in query["X-Amz-Credential"][0]


def test_presigned_put_signs_content_length_when_size_is_declared(api, owner, org_a, binding, s3_admin):
    presigned = _presign(api.as_user(owner), org_a, binding, size=len(CONTENT))
    query = parse_qs(urlsplit(presigned["uploadUrl"]).query)
    assert query["X-Amz-SignedHeaders"] == ["content-length;host"]
    assert presigned["headers"]["Content-Length"] == str(len(CONTENT))
    assert requests.put(presigned["uploadUrl"], data=CONTENT, timeout=10).status_code == 200


def test_presign_expiry_comes_from_settings(api, owner, org_a, binding, settings):
    settings.DEPLITE_PRESIGN_EXPIRY_SECONDS = 120
    presigned = _presign(api.as_user(owner), org_a, binding)
    assert presigned["expiresInSeconds"] == 120
    assert parse_qs(urlsplit(presigned["uploadUrl"]).query)["X-Amz-Expires"] == ["120"]


def test_presign_expiry_is_capped_at_seven_days(api, owner, org_a, binding, settings):
    settings.DEPLITE_PRESIGN_EXPIRY_SECONDS = 30 * 24 * 3600
    presigned = _presign(api.as_user(owner), org_a, binding)
    assert presigned["expiresInSeconds"] == 604800
    assert parse_qs(urlsplit(presigned["uploadUrl"]).query)["X-Amz-Expires"] == ["604800"]


def test_download_url_is_signed_locally_without_any_connection(api, owner, org_a, binding, outbound, moto_url):
    file = StoredFileFactory(org=org_a, binding=binding, status=FileStatus.AVAILABLE, file_name="배포.tar.gz")
    response = api.as_user(owner).get(files_url(org_a, file.pk, "download-url"))
    assert response.status_code == 200
    query = parse_qs(urlsplit(response.json()["downloadUrl"]).query)
    assert query["response-content-disposition"] == ["attachment; filename*=utf-8''%EB%B0%B0%ED%8F%AC.tar.gz"]
    assert outbound.to_port(urlsplit(moto_url).port) == []


def test_presign_is_signed_locally_without_any_connection(api, owner, org_a, binding, outbound, moto_url):
    _presign(api.as_user(owner), org_a, binding)
    port = urlsplit(moto_url).port
    assert outbound.to_port(port) == []


def test_complete_without_upload_fails_with_a_reason(api, owner, org_a, binding, django_capture_on_commit_callbacks):
    presigned = _presign(api.as_user(owner), org_a, binding)
    with django_capture_on_commit_callbacks(execute=True):
        api.post(files_url(org_a, presigned["fileId"], "complete"))
    file = StoredFile.objects.get(pk=presigned["fileId"])
    assert file.status == FileStatus.FAILED
    assert "No object was found" in file.failure_reason
    assert api.get(files_url(org_a, file.pk)).json()["failureReason"] == file.failure_reason


def test_object_larger_than_the_limit_fails_and_is_removed(
    api, owner, org_a, binding, settings, s3_admin, django_capture_on_commit_callbacks
):
    settings.DEPLITE_MAX_UPLOAD_BYTES = 100
    presigned = _presign(api.as_user(owner), org_a, binding)
    assert requests.put(presigned["uploadUrl"], data=b"x" * 101, timeout=10).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        api.post(files_url(org_a, presigned["fileId"], "complete"))
    file = StoredFile.objects.get(pk=presigned["fileId"])
    assert file.status == FileStatus.FAILED
    assert "larger than the limit" in file.failure_reason
    listed = s3_admin.list_objects_v2(Bucket=binding.bucket)
    assert listed.get("KeyCount", 0) == 0
    assert file.object_removed_at is not None


def test_object_of_another_size_than_declared_fails(
    api, owner, org_a, binding, s3_admin, django_capture_on_commit_callbacks
):
    presigned = _presign(api.as_user(owner), org_a, binding, size=5)
    # moto does not enforce the signed Content-Length (S3 would refuse this PUT).
    requests.put(presigned["uploadUrl"], data=b"1234567", timeout=10)
    with django_capture_on_commit_callbacks(execute=True):
        api.post(files_url(org_a, presigned["fileId"], "complete"))
    file = StoredFile.objects.get(pk=presigned["fileId"])
    assert file.status == FileStatus.FAILED
    assert "5 were declared" in file.failure_reason


def test_calling_complete_again_is_harmless(api, owner, org_a, binding, django_capture_on_commit_callbacks):
    presigned = _presign(api.as_user(owner), org_a, binding)
    requests.put(presigned["uploadUrl"], data=b"hello", timeout=10)
    url = files_url(org_a, presigned["fileId"], "complete")
    with django_capture_on_commit_callbacks(execute=True):
        api.post(url)
    audits = AuditEvent.objects.filter(action="file.completed").count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = api.post(url)
    assert again.status_code == 202
    assert again.json() == {"fileId": presigned["fileId"], "status": "available"}
    assert callbacks == []
    assert AuditEvent.objects.filter(action="file.completed").count() == audits


def test_download_url_of_a_file_not_available_is_a_conflict(api, owner, org_a, binding):
    presigned = _presign(api.as_user(owner), org_a, binding)
    error = assert_error_shape(api.get(files_url(org_a, presigned["fileId"], "download-url")), 409)
    assert error["code"] == "file_not_available"


def test_delete_removes_the_object_and_repeating_it_is_harmless(
    api, admin_user, org_a, binding, s3_admin, django_capture_on_commit_callbacks, announcements
):
    api.as_user(admin_user)
    presigned = _presign(api, org_a, binding)
    requests.put(presigned["uploadUrl"], data=b"hello", timeout=10)
    with django_capture_on_commit_callbacks(execute=True):
        api.post(files_url(org_a, presigned["fileId"], "complete"))
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(files_url(org_a, presigned["fileId"])).status_code == 204
    assert s3_admin.list_objects_v2(Bucket=binding.bucket).get("KeyCount", 0) == 0
    file = StoredFile.objects.get(pk=presigned["fileId"])
    assert file.status == FileStatus.DELETED and file.object_removed_at is not None
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert api.delete(files_url(org_a, presigned["fileId"])).status_code == 204
    assert callbacks == []
    assert [a[2] for a in announcements] == ["available", "deleted"]
    assert assert_error_shape(api.get(files_url(org_a, file.pk, "download-url")), 409)["code"] == "file_not_available"
    # Deleted files leave the default listing but can still be asked for.
    assert api.get(files_url(org_a)).json()["count"] == 0
    assert api.get(files_url(org_a) + "?status=deleted").json()["count"] == 1


def test_complete_after_delete_is_a_conflict(api, admin_user, org_a, binding, django_capture_on_commit_callbacks):
    api.as_user(admin_user)
    presigned = _presign(api, org_a, binding)
    with django_capture_on_commit_callbacks(execute=True):
        api.delete(files_url(org_a, presigned["fileId"]))
    error = assert_error_shape(api.post(files_url(org_a, presigned["fileId"], "complete")), 409)
    assert error["code"] == "file_not_pending"
