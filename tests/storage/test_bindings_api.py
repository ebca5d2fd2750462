"""Storage bindings API: CRUD, roles, the secret's write-only life, test connection."""

from __future__ import annotations

import io
import socket

import botocore.session
import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from orgs.models import StoragePermission, TokenScope
from storage import s3
from storage.models import FileStatus, StorageBinding
from tests.factories import StorageBindingFactory, StoredFileFactory, make_token

from .conftest import assert_error_shape, bindings_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def body(moto_url, bucket, allow_private):
    return {
        "name": "prod-artifacts",
        "endpoint": moto_url,
        "region": "ap-northeast-2",
        "bucket": bucket,
        "accessKey": "AKIAEXAMPLE",
        "secretKey": "the-secret-value",
        "pathStyle": True,
    }


def test_owner_creates_a_binding_and_the_secret_is_never_returned(api, owner, org_a, body):
    response = api.as_user(owner).post(bindings_url(org_a), body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert "secretKey" not in data and "the-secret-value" not in response.content.decode()
    assert data["name"] == "prod-artifacts" and data["accessKey"] == "AKIAEXAMPLE" and data["pathStyle"] is True
    binding = StorageBinding.objects.get(pk=data["id"])
    assert binding.secret_key == "the-secret-value"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret_key FROM storage_storagebinding WHERE id = %s",
            [binding.pk.hex if connection.vendor == "sqlite" else binding.pk],
        )
        raw = cursor.fetchone()[0]
    assert "the-secret-value" not in raw


def test_member_can_read_bindings_but_not_create_them(api, member, org_a, binding, body):
    api.as_user(member)
    assert api.get(bindings_url(org_a)).json()["results"][0]["id"] == str(binding.pk)
    assert api.get(bindings_url(org_a, binding.pk)).status_code == 200
    assert_error_shape(api.post(bindings_url(org_a), body, format="json"), 403)
    assert_error_shape(api.patch(bindings_url(org_a, binding.pk), {"name": "x"}, format="json"), 403)
    assert_error_shape(api.delete(bindings_url(org_a, binding.pk)), 403)


def test_storage_token_sees_only_its_bindings_and_cannot_manage(api, org_a, binding):
    other = StorageBindingFactory(org=org_a)
    _, raw = make_token(
        org_a,
        scope_type=TokenScope.STORAGE,
        binding_ids=[str(binding.pk)],
        storage_permissions=[StoragePermission.READ],
    )
    api.as_token(raw)
    # Binding metadata is storage.read, which storage tokens do not carry.
    assert_error_shape(api.get(bindings_url(org_a)), 403)
    assert_error_shape(api.delete(bindings_url(org_a, other.pk)), 403)


def test_duplicate_name_is_a_conflict(api, owner, org_a, body):
    api.as_user(owner)
    api.post(bindings_url(org_a), body, format="json")
    error = assert_error_shape(api.post(bindings_url(org_a), body, format="json"), 409)
    assert error["code"] == "name_taken"
    assert StorageBinding.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"endpoint": "http://127.0.0.1:1"},
        {"bucket": "other-bucket"},
        {"region": "eu-west-1"},
        {"accessKey": "AKIAOTHER"},
    ],
)
def test_pointing_the_key_elsewhere_needs_the_secret_again(api, owner, org_a, binding, change):
    api.as_user(owner)
    error = assert_error_shape(api.patch(bindings_url(org_a, binding.pk), change, format="json"), 400)
    assert error["code"] == "secret_required"
    binding.refresh_from_db()
    assert binding.bucket != "other-bucket" and binding.access_key == "AKIADEPLITETEST"
    ok = api.patch(bindings_url(org_a, binding.pk), {**change, "secretKey": "new-secret"}, format="json")
    assert ok.status_code == 200, ok.content
    binding.refresh_from_db()
    assert binding.secret_key == "new-secret"


def test_renaming_does_not_need_the_secret(api, owner, org_a, binding):
    response = api.as_user(owner).patch(
        bindings_url(org_a, binding.pk), {"name": "renamed", "prefix": "builds/"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "renamed" and response.json()["prefix"] == "builds/"


def test_binding_with_live_files_cannot_be_deleted(api, owner, org_a, binding):
    StoredFileFactory(org=org_a, binding=binding, status=FileStatus.AVAILABLE)
    api.as_user(owner)
    assert assert_error_shape(api.delete(bindings_url(org_a, binding.pk)), 409)["code"] == "binding_in_use"
    binding.files.update(status=FileStatus.DELETED)
    assert api.delete(bindings_url(org_a, binding.pk)).status_code == 204
    assert not StorageBinding.objects.filter(pk=binding.pk).exists()


def test_other_orgs_binding_is_not_found(api, outsider, org_a, binding):
    api.as_user(outsider)
    for response in (
        api.get(bindings_url(org_a, binding.pk)),
        api.patch(bindings_url(org_a, binding.pk), {"name": "x"}, format="json"),
        api.delete(bindings_url(org_a, binding.pk)),
        api.post(bindings_url(org_a, binding.pk, "test")),
    ):
        assert_error_shape(response, 404)
    assert StorageBinding.objects.get(pk=binding.pk).name == "prod-artifacts"


# --- test connection ------------------------------------------------------------------------------------


@pytest.fixture
def auth_binding(org_a, moto_auth, allow_private):
    return StorageBindingFactory(
        org=org_a,
        endpoint=moto_auth["url"],
        bucket=moto_auth["bucket"],
        access_key=moto_auth["access_key"],
        secret_key=moto_auth["secret_key"],
        region="us-east-1",
    )


def _test(api, owner, org, binding) -> dict:
    response = api.as_user(owner).post(bindings_url(org, binding.pk, "test"))
    assert response.status_code == 200
    return response.json()


def test_test_connection_succeeds_with_a_good_key(api, owner, org_a, auth_binding):
    assert _test(api, owner, org_a, auth_binding) == {
        "ok": True,
        "code": "ok",
        "message": "The bucket is reachable with this key.",
    }


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"access_key": "AKIAUNKNOWNKEY000000"}, "invalid_access_key"),
        ({"secret_key": "not-the-secret"}, "signature_mismatch"),
        ({"bucket": "no-such-bucket"}, "no_such_bucket"),
    ],
)
def test_test_connection_names_what_is_wrong(api, owner, org_a, auth_binding, change, code):
    StorageBinding.objects.filter(pk=auth_binding.pk).update(**{k: v for k, v in change.items() if k != "secret_key"})
    if "secret_key" in change:
        auth_binding.secret_key = change["secret_key"]
        auth_binding.save()
    auth_binding.refresh_from_db()
    result = _test(api, owner, org_a, auth_binding)
    assert (result["ok"], result["code"]) == (False, code)
    assert result["message"]


def test_test_connection_reports_an_unreachable_endpoint(api, owner, org_a, allow_private):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed as soon as the block ends: nothing listens there
    binding = StorageBindingFactory(org=org_a, endpoint=f"http://127.0.0.1:{port}")
    result = _test(api, owner, org_a, binding)
    assert (result["ok"], result["code"]) == (False, "endpoint_unreachable")


def _authed_body(moto_auth, **changes) -> dict:
    return {
        "name": "artifacts",
        "endpoint": moto_auth["url"],
        "region": "us-east-1",
        "bucket": moto_auth["bucket"],
        "accessKey": moto_auth["access_key"],
        "secretKey": moto_auth["secret_key"],
        "pathStyle": True,
        **changes,
    }


def test_creating_a_binding_answers_with_the_connection_check(api, owner, org_a, moto_auth, allow_private):
    response = api.as_user(owner).post(bindings_url(org_a), _authed_body(moto_auth), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["check"] == {"ok": True, "code": "ok", "message": "The bucket is reachable with this key."}


def test_a_binding_to_a_missing_bucket_is_saved_and_its_answer_says_the_bucket_is_missing(
    api, owner, org_a, moto_auth, allow_private
):
    body = _authed_body(moto_auth, bucket="no-such-bucket")
    response = api.as_user(owner).post(bindings_url(org_a), body, format="json")
    assert response.status_code == 201, response.content
    check = response.json()["check"]
    assert (check["ok"], check["code"]) == (False, "no_such_bucket")
    assert check["message"] == "The bucket does not exist at this endpoint."
    # Saved all the same, as on the page: the bucket may be created next.
    assert StorageBinding.objects.get(pk=response.json()["id"]).bucket == "no-such-bucket"


def test_a_binding_to_an_unreachable_endpoint_is_saved_and_its_answer_says_so(api, owner, org_a, allow_private):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed as soon as the block ends: nothing listens there
    body = {
        "name": "nowhere",
        "endpoint": f"http://127.0.0.1:{port}",
        "bucket": "artifacts",
        "accessKey": "AKIAEXAMPLE",
        "secretKey": "the-secret-value",
    }
    response = api.as_user(owner).post(bindings_url(org_a), body, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["check"]["ok"], response.json()["check"]["code"]) == (False, "endpoint_unreachable")
    assert "the-secret-value" not in response.content.decode()


def test_a_patch_that_moves_the_key_answers_with_the_check_and_a_rename_with_null(
    api, owner, org_a, moto_auth, allow_private
):
    api.as_user(owner)
    created = api.post(bindings_url(org_a), _authed_body(moto_auth), format="json").json()
    url = bindings_url(org_a, created["id"])
    renamed = api.patch(url, {"name": "renamed"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["check"] is None
    moved = api.patch(url, {"bucket": "gone-bucket", "secretKey": moto_auth["secret_key"]}, format="json")
    assert moved.status_code == 200, moved.content
    assert (moved.json()["check"]["ok"], moved.json()["check"]["code"]) == (False, "no_such_bucket")


# --- one client per binding ---------------------------------------------------------------------------


@pytest.fixture
def client_builds(monkeypatch):
    """Counts real botocore client constructions (the call still happens)."""
    built = []
    original = botocore.session.Session.create_client

    def counting(self, *args, **kwargs):
        built.append(args[0] if args else kwargs.get("service_name"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", counting)
    return built


def test_a_thousand_presigns_build_exactly_one_client(binding, client_builds):
    s3.forget(binding.pk)
    urls = {s3.presign_put(binding=binding, key=f"k/{i}", size=None, expires_in=60) for i in range(1000)}
    assert len(urls) == 1000
    assert client_builds == ["s3"]


def test_client_is_rebuilt_when_credentials_change(binding, client_builds):
    s3.forget(binding.pk)
    first = s3.client_for(binding)
    assert s3.client_for(StorageBinding.objects.get(pk=binding.pk)) is first
    binding.secret_key = "rotated"
    binding.save()
    second = s3.client_for(StorageBinding.objects.get(pk=binding.pk))
    assert second is not first
    assert len(client_builds) == 2


def test_rotate_encryption_keys_reencrypts_binding_secrets_with_the_newest_key(org_a, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.DEPLITE_ENCRYPTION_KEYS = [old]
    binding = StorageBindingFactory(org=org_a, secret_key="rotate-me")
    settings.DEPLITE_ENCRYPTION_KEYS = [new, old]
    assert StorageBinding.objects.get(pk=binding.pk).secret_key == "rotate-me"
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    # Read the column itself: the model field would decrypt it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_key FROM storage_storagebinding")
        (ciphertext,) = cursor.fetchone()
    assert Fernet(new.encode()).decrypt(ciphertext.encode()) == b"rotate-me"
    settings.DEPLITE_ENCRYPTION_KEYS = [new]  # the old key is retired
    assert StorageBinding.objects.get(pk=binding.pk).secret_key == "rotate-me"
