"""Storage pages: bindings (the secret is write-only: never rendered, not even on an
error), Test connection against an S3 server that checks keys, delete, and files."""

from __future__ import annotations

import pytest
from django.test import Client

from deplite import crypto
from orgs.models import AuditEvent
from storage.models import FileStatus, StorageBinding, StoredFile

from ..factories import StorageBindingFactory, StoredFileFactory

CANARY = "canary-SECRET-9f3b2c7d"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _form(**changes) -> dict:
    return {
        "name": "prod-artifacts",
        "endpoint": "https://s3.amazonaws.com",
        "region": "ap-northeast-2",
        "bucket": "myapp-deplite",
        "access_key": "AKIADEPLITE",
        "secret_key": CANARY,
        "prefix": "",
        **changes,
    }


@pytest.fixture
def public_dns(monkeypatch, outbound):
    """s3.amazonaws.com resolves to a public address without asking real DNS.

    Only for forms that fail before saving: a saved binding is tested, and tests talk only
    to loopback (those point at the moto server instead). This fails a test that connects out.
    """
    import ipaddress

    from storage import endpoints

    monkeypatch.setattr(endpoints, "resolve", lambda host, port: [ipaddress.ip_address("52.216.0.1")])
    yield
    assert all(ipaddress.ip_address(host).is_loopback for host, *_ in outbound), list(outbound)


def test_member_sees_bindings_read_only(member, org_a):
    binding = StorageBindingFactory(org=org_a, name="prod-artifacts", secret_key=CANARY)
    client = _client(member)
    page = client.get("/orgs/acme/storage/")
    assert page.status_code == 200 and b"prod-artifacts" in page.content
    assert b"New binding" not in page.content and b"Test connection" not in page.content
    assert CANARY.encode() not in page.content
    for path in ("/orgs/acme/storage/new/", f"/orgs/acme/storage/{binding.pk}/"):
        assert client.get(path).status_code == 403
    for path in (
        "/orgs/acme/storage/new/",
        f"/orgs/acme/storage/{binding.pk}/",
        f"/orgs/acme/storage/{binding.pk}/test",
        f"/orgs/acme/storage/{binding.pk}/delete",
    ):
        assert client.post(path, _form(name="hijack")).status_code == 403
    binding.refresh_from_db()
    assert binding.name == "prod-artifacts" and StorageBinding.objects.count() == 1


def _moto_form(moto_url, bucket, **changes) -> dict:
    """The form pointed at the local S3 server: saving tests the binding, and tests talk only to loopback."""
    return _form(endpoint=moto_url, bucket=bucket, path_style="on", **changes)


def test_admin_creates_a_binding_with_a_masked_write_only_secret(admin_user, org_a, moto_url, bucket, allow_private):
    client = _client(admin_user)
    new = client.get("/orgs/acme/storage/new/").content.decode()
    assert 'type="password" name="secret_key"' in new
    response = client.post("/orgs/acme/storage/new/", _moto_form(moto_url, bucket))
    binding = StorageBinding.objects.get(org=org_a)
    assert response.status_code == 302 and response["Location"] == f"/orgs/acme/storage/{binding.pk}/"
    assert binding.secret_key == CANARY and binding.endpoint == moto_url
    edit = client.get(response["Location"]).content.decode()
    assert "prod-artifacts" in edit and "AKIADEPLITE" in edit
    assert CANARY not in edit and crypto.encrypt(CANARY)[:10] not in edit
    assert CANARY not in client.get("/orgs/acme/storage/").content.decode()
    assert CANARY not in repr(AuditEvent.objects.filter(action="storage_binding.created").values_list())


def _check_result(page) -> str:
    html = page.content.decode()
    start = html.index('data-testid="check-result"')
    return html[start : html.index("</ul>", start)]


def test_saving_a_binding_to_an_existing_bucket_shows_connection_ok(admin_user, org_a, moto_url, bucket, allow_private):
    client = _client(admin_user)
    created = client.post("/orgs/acme/storage/new/", _moto_form(moto_url, bucket), follow=True)
    binding = StorageBinding.objects.get(org=org_a)
    assert created.redirect_chain == [(f"/orgs/acme/storage/{binding.pk}/", 302)]
    shown = _check_result(created)
    assert 'class="success"' in shown and "Connection OK: The bucket is reachable with this key." in shown
    assert "Storage binding prod-artifacts created." in created.content.decode()
    # The result is shown once, for the save that produced it.
    assert 'data-testid="check-result"' not in client.get(f"/orgs/acme/storage/{binding.pk}/").content.decode()

    saved = client.post(
        f"/orgs/acme/storage/{binding.pk}/", _moto_form(moto_url, bucket, name="renamed", secret_key=""), follow=True
    )
    assert "Connection OK" in _check_result(saved) and CANARY not in saved.content.decode()
    binding.refresh_from_db()
    assert binding.name == "renamed" and binding.secret_key == CANARY


def test_saving_a_binding_to_a_missing_bucket_saves_it_and_shows_the_reason(
    admin_user, org_a, moto_url, bucket, allow_private
):
    client = _client(admin_user)
    created = client.post("/orgs/acme/storage/new/", _moto_form(moto_url, "no-such-bucket-here"), follow=True)
    # Saved all the same: the bucket may be created (or the key fixed) on the storage side.
    binding = StorageBinding.objects.get(org=org_a)
    assert binding.bucket == "no-such-bucket-here"
    shown = _check_result(created)
    assert 'class="error"' in shown
    assert "Connection failed (no_such_bucket): The bucket does not exist at this endpoint." in shown
    assert CANARY not in created.content.decode()

    # Editing it to an existing bucket (the key goes elsewhere, so the secret again) turns it OK.
    fixed = client.post(f"/orgs/acme/storage/{binding.pk}/", _moto_form(moto_url, bucket), follow=True)
    assert "Connection OK" in _check_result(fixed)


def test_saving_a_binding_with_a_wrong_key_shows_access_failure(admin_user, org_a, moto_auth, allow_private):
    form = _moto_form(moto_auth["url"], moto_auth["bucket"], access_key=moto_auth["access_key"])
    created = _client(admin_user).post("/orgs/acme/storage/new/", form, follow=True)
    assert StorageBinding.objects.filter(org=org_a, name="prod-artifacts").exists()
    shown = _check_result(created)
    assert "Connection failed (signature_mismatch): The secret key does not match the access key" in shown
    assert CANARY not in created.content.decode()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"bucket": "x"}, "bucket", "must be 3–63"),
        ({"region": "Not A Region"}, "region", "must look like"),
        ({"access_key": "has space"}, "access_key", "printable characters"),
        ({"prefix": "../up"}, "prefix", "path segments"),
        ({"name": ""}, "name", "may not be blank"),
        ({"secret_key": ""}, "secret_key", "may not be blank"),
        ({"endpoint": "http://s3.amazonaws.com"}, "endpoint", "must start with https://"),
        ({"endpoint": "https://169.254.169.254"}, "endpoint", "metadata"),
        ({"endpoint": "https://2130706433"}, "endpoint", "endpoint:"),
    ],
)
def test_binding_form_rejects_bad_input_without_writing_or_echoing_the_secret(
    admin_user, org_a, public_dns, changes, field, message
):
    response = _client(admin_user).post("/orgs/acme/storage/new/", _form(**changes))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert CANARY not in response.content.decode()
    assert not StorageBinding.objects.exists()


def test_a_taken_name_is_an_error_on_the_name(admin_user, org_a, public_dns):
    StorageBindingFactory(org=org_a, name="prod-artifacts")
    response = _client(admin_user).post("/orgs/acme/storage/new/", _form())
    assert response.status_code == 400 and "already exists" in " ".join(response.context["form"].errors["name"])
    assert CANARY not in response.content.decode()
    assert StorageBinding.objects.count() == 1


def test_edit_keeps_the_secret_when_left_empty(admin_user, org_a, moto_url, bucket, allow_private):
    binding = StorageBindingFactory(
        org=org_a, name="old", endpoint=moto_url, bucket=bucket, path_style=True, secret_key=CANARY
    )
    response = _client(admin_user).post(
        f"/orgs/acme/storage/{binding.pk}/",
        _moto_form(
            moto_url, bucket, name="renamed", region=binding.region, access_key=binding.access_key, secret_key=""
        ),
    )
    assert response.status_code == 302
    binding.refresh_from_db()
    assert binding.name == "renamed" and binding.secret_key == CANARY


def test_pointing_the_key_elsewhere_needs_the_secret_again(admin_user, org_a, public_dns):
    binding = StorageBindingFactory(org=org_a, endpoint="https://s3.amazonaws.com", secret_key=CANARY)
    fields = _form(name=binding.name, region=binding.region, access_key=binding.access_key, secret_key="")
    response = _client(admin_user).post(f"/orgs/acme/storage/{binding.pk}/", {**fields, "bucket": "attacker-bucket"})
    assert response.status_code == 400
    assert "send the secret key again" in " ".join(response.context["form"].errors["secret_key"])
    assert CANARY not in response.content.decode()
    binding.refresh_from_db()
    assert binding.bucket == "deplite-test"


def test_test_connection_shows_the_result(admin_user, org_a, moto_auth, allow_private):
    good = StorageBindingFactory(
        org=org_a,
        name="good",
        endpoint=moto_auth["url"],
        bucket=moto_auth["bucket"],
        access_key=moto_auth["access_key"],
        secret_key=moto_auth["secret_key"],
    )
    bad = StorageBindingFactory(
        org=org_a,
        name="bad",
        endpoint=moto_auth["url"],
        bucket=moto_auth["bucket"],
        access_key=moto_auth["access_key"],
        secret_key="wrong-" + CANARY,
    )
    client = _client(admin_user)
    ok = client.post(f"/orgs/acme/storage/{good.pk}/test", follow=True)
    assert ok.redirect_chain == [(f"/orgs/acme/storage/{good.pk}/", 302)]
    assert "Connection OK: The bucket is reachable with this key." in ok.content.decode()
    failed = client.post(f"/orgs/acme/storage/{bad.pk}/test", follow=True).content.decode()
    assert "Connection failed" in failed and CANARY not in failed


def test_test_connection_is_a_post(admin_user, org_a):
    binding = StorageBindingFactory(org=org_a)
    assert _client(admin_user).get(f"/orgs/acme/storage/{binding.pk}/test").status_code == 405


def test_delete_refuses_a_binding_with_files_and_deletes_an_empty_one(admin_user, org_a):
    used = StorageBindingFactory(org=org_a, name="used")
    StoredFileFactory(org=org_a, binding=used, status=FileStatus.AVAILABLE)
    empty = StorageBindingFactory(org=org_a, name="empty")
    client = _client(admin_user)
    refused = client.post(f"/orgs/acme/storage/{used.pk}/delete", follow=True).content.decode()
    assert "still has files" in refused
    done = client.post(f"/orgs/acme/storage/{empty.pk}/delete", follow=True).content.decode()
    assert "Storage binding empty deleted." in done
    assert list(StorageBinding.objects.values_list("name", flat=True)) == ["used"]


def test_files_list_shows_status_and_hides_deleted_unless_asked(member, org_a, org_b):
    binding = StorageBindingFactory(org=org_a, name="prod-artifacts")
    available = StoredFileFactory(org=org_a, binding=binding, file_name="app.tar.gz", status=FileStatus.AVAILABLE)
    failed = StoredFileFactory(
        org=org_a, binding=binding, file_name="broken.tar.gz", status=FileStatus.FAILED, failure_reason="No object"
    )
    deleted = StoredFileFactory(org=org_a, binding=binding, file_name="gone.tar.gz", status=FileStatus.DELETED)
    StoredFileFactory(org=org_b, file_name="foreign.tar.gz")
    client = _client(member)
    html = client.get("/orgs/acme/storage/files/").content.decode()
    assert "app.tar.gz" in html and "broken.tar.gz" in html and "No object" in html
    assert "gone.tar.gz" not in html and "foreign.tar.gz" not in html
    assert 'class="badge available"' in html and 'class="badge failed"' in html
    only_deleted = client.get("/orgs/acme/storage/files/?status=deleted")
    assert [f.pk for f in only_deleted.context["page"]] == [deleted.pk]
    by_binding = client.get(f"/orgs/acme/storage/files/?bindingId={binding.pk}")
    assert {f.pk for f in by_binding.context["page"]} == {available.pk, failed.pk}
    assert client.get("/orgs/acme/storage/files/?bindingId=nope&status=zzz").status_code == 200


def test_the_files_page_upload_endpoints_answer_bad_input_in_the_error_shape(member, org_a, binding):
    client = _client(member)
    url = f"/orgs/acme/storage/{binding.pk}/presign-upload"
    bad = client.post(url, {"file_name": "../etc/passwd", "size": "10"})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["code"] == "validation_error" and "fileName" in error["details"]["fields"]
    too_big = client.post(url, {"file_name": "a.bin", "size": str(10**15)})
    assert too_big.status_code == 413 and too_big.json()["error"]["code"]
    assert not StoredFile.objects.exists()
    ok = client.post(url, {"file_name": "a.bin", "size": "3", "content_type": "application/octet-stream"})
    assert ok.status_code == 201 and ok.json()["uploadUrl"].startswith("http")
    file_id = ok.json()["fileId"]
    done = client.post(f"/orgs/acme/storage/files/{file_id}/complete")
    assert done.status_code == 202
    assert client.get(f"/orgs/acme/storage/files/{file_id}/status").json()["status"] == "verifying"
    assert client.post(f"/orgs/acme/storage/files/{file_id}/complete").status_code == 202  # a retry is harmless
