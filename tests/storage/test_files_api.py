"""Files API: who may do what, other orgs' objects, bad input, query counts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orgs.models import AuditEvent, StoragePermission, TokenScope
from storage.models import FileStatus, StoredFile
from tests.factories import StorageBindingFactory, StoredFileFactory, make_token
from tests.statements import per_backend, statements

from .conftest import assert_error_shape, files_url

pytestmark = pytest.mark.django_db


def _body(binding, **overrides) -> dict:
    return {"bindingId": str(binding.pk), "fileName": "build.tar.gz", "contentType": "application/gzip", **overrides}


def _storage_token(org, binding_ids, perms, **extra) -> str:
    return make_token(
        org,
        scope_type=TokenScope.STORAGE,
        binding_ids=[str(b) for b in binding_ids],
        storage_permissions=perms,
        **extra,
    )[1]


# --- permissions --------------------------------------------------------------------------------------------


def test_member_can_presign_but_not_delete(api, member, org_a, binding):
    api.as_user(member)
    response = api.post(files_url(org_a, "presign-upload"), _body(binding), format="json")
    assert response.status_code == 201
    assert_error_shape(api.delete(files_url(org_a, response.json()["fileId"])), 403)
    assert StoredFile.objects.get().status == FileStatus.PENDING


def test_storage_token_without_write_cannot_presign(api, org_a, binding):
    api.as_token(_storage_token(org_a, [binding.pk], [StoragePermission.READ]))
    assert_error_shape(api.post(files_url(org_a, "presign-upload"), _body(binding), format="json"), 403)
    assert StoredFile.objects.count() == 0


def test_storage_token_with_write_presigns_on_its_binding(api, org_a, binding):
    token, raw = make_token(
        org_a, scope_type=TokenScope.STORAGE, binding_ids=[str(binding.pk)], storage_permissions=["write"]
    )
    response = api.as_token(raw).post(files_url(org_a, "presign-upload"), _body(binding), format="json")
    assert response.status_code == 201
    assert StoredFile.objects.get().created_by_token == token


def test_token_for_binding_a_cannot_use_binding_b(api, org_a, binding):
    other = StorageBindingFactory(org=org_a)
    other_file = StoredFileFactory(org=org_a, binding=other, status=FileStatus.AVAILABLE)
    api.as_token(_storage_token(org_a, [binding.pk], ["read", "write", "delete"]))
    error = assert_error_shape(api.post(files_url(org_a, "presign-upload"), _body(other), format="json"), 404)
    assert error["code"] == "binding_not_found"
    for response in (
        api.get(files_url(org_a, other_file.pk)),
        api.get(files_url(org_a, other_file.pk, "download-url")),
        api.post(files_url(org_a, other_file.pk, "complete")),
        api.delete(files_url(org_a, other_file.pk)),
    ):
        assert_error_shape(response, 404)
    assert api.get(files_url(org_a)).json()["count"] == 0
    assert StoredFile.objects.get(pk=other_file.pk).status == FileStatus.AVAILABLE


def test_storage_token_read_lists_only_its_bindings_files(api, org_a, binding):
    mine = StoredFileFactory(org=org_a, binding=binding)
    StoredFileFactory(org=org_a, binding=StorageBindingFactory(org=org_a))
    api.as_token(_storage_token(org_a, [binding.pk], ["read"]))
    listed = api.get(files_url(org_a)).json()
    assert [f["id"] for f in listed["results"]] == [str(mine.pk)]


def test_storage_token_with_delete_can_delete(api, org_a, binding, django_capture_on_commit_callbacks):
    file = StoredFileFactory(org=org_a, binding=binding, status=FileStatus.FAILED)
    api.as_token(_storage_token(org_a, [binding.pk], ["delete"]))
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(files_url(org_a, file.pk)).status_code == 204
    assert StoredFile.objects.get(pk=file.pk).status == FileStatus.DELETED


def test_expired_token_is_unauthenticated(api, org_a, binding):
    raw = _storage_token(org_a, [binding.pk], ["write"], expires_at=timezone.now() - timedelta(seconds=1))
    assert_error_shape(api.as_token(raw).post(files_url(org_a, "presign-upload"), _body(binding), format="json"), 401)


def test_other_orgs_binding_and_file_are_not_found(api, outsider, owner, org_a, org_b, binding):
    file = StoredFileFactory(org=org_a, binding=binding, status=FileStatus.AVAILABLE)
    # An outsider naming org_a's binding from their own org.
    api.as_user(outsider)
    assert_error_shape(api.post(files_url(org_b, "presign-upload"), _body(binding), format="json"), 404)
    for response in (
        api.get(files_url(org_b, file.pk)),
        api.get(files_url(org_a, file.pk)),
        api.get(files_url(org_a, file.pk, "download-url")),
        api.post(files_url(org_a, file.pk, "complete")),
        api.delete(files_url(org_a, file.pk)),
    ):
        assert_error_shape(response, 404)
    assert StoredFile.objects.filter(org=org_b).count() == 0


def test_unauthenticated_is_401(api, org_a, binding):
    assert_error_shape(api.anonymous().post(files_url(org_a, "presign-upload"), _body(binding), format="json"), 401)


# --- bad input ---------------------------------------------------------------------------------------------

BAD_BODIES = [
    ("missing binding", lambda b: {"fileName": "a.txt", "contentType": "text/plain"}),
    ("binding not a uuid", lambda b: _body(b, bindingId="bnd-001")),
    ("binding a number", lambda b: _body(b, bindingId=12)),
    ("binding null", lambda b: _body(b, bindingId=None)),
    ("binding a list", lambda b: _body(b, bindingId=[str(b.pk)])),
    ("unknown binding", lambda b: _body(b, bindingId="00000000-0000-0000-0000-000000000000")),
    ("missing name", lambda b: {"bindingId": str(b.pk), "contentType": "text/plain"}),
    ("empty name", lambda b: _body(b, fileName="")),
    ("blank name", lambda b: _body(b, fileName="   ")),
    ("name null", lambda b: _body(b, fileName=None)),
    ("name an object", lambda b: _body(b, fileName={"a": 1})),
    ("name a path", lambda b: _body(b, fileName="dist/app.tar.gz")),
    ("name absolute", lambda b: _body(b, fileName="/etc/passwd")),
    ("name backslash", lambda b: _body(b, fileName="..\\..\\boot.ini")),
    ("name dotdot", lambda b: _body(b, fileName="..")),
    ("name dot", lambda b: _body(b, fileName=".")),
    ("name with dotdot", lambda b: _body(b, fileName="a..b")),
    ("name newline", lambda b: _body(b, fileName="a\nb.txt")),
    ("name nul", lambda b: _body(b, fileName="a\x00b.txt")),
    ("name tab", lambda b: _body(b, fileName="a\tb.txt")),
    ("name bidi override", lambda b: _body(b, fileName="invoice\u202egpj.exe")),
    ("name zero width", lambda b: _body(b, fileName="a\u200bb.txt")),
    ("name 256 bytes", lambda b: _body(b, fileName="a" * 256)),
    ("name 128 two-byte chars", lambda b: _body(b, fileName="é" * 128)),
    ("name 2000 chars", lambda b: _body(b, fileName="a" * 2000)),
    ("type without slash", lambda b: _body(b, contentType="gzip")),
    ("type with newline", lambda b: _body(b, contentType="text/plain\r\nX-Evil: 1")),
    ("type with spaces", lambda b: _body(b, contentType="text / plain")),
    ("type empty", lambda b: _body(b, contentType="")),
    ("type a number", lambda b: _body(b, contentType=5)),
    ("type too long", lambda b: _body(b, contentType="a/" + "b" * 300)),
    ("size negative", lambda b: _body(b, size=-1)),
    ("size fractional", lambda b: _body(b, size=1.5)),
    ("size a word", lambda b: _body(b, size="big")),
    ("size boolean", lambda b: _body(b, size=True)),
    ("size over the limit", lambda b: _body(b, size=6 * 1024**3)),
    ("size astronomically large", lambda b: _body(b, size=10**40)),
]


@pytest.mark.parametrize("make_body", [m for _, m in BAD_BODIES], ids=[n for n, _ in BAD_BODIES])
def test_bad_presign_input_is_refused_in_the_error_shape_and_writes_nothing(api, owner, org_a, binding, make_body):
    audits = AuditEvent.objects.count()
    response = api.as_user(owner).post(files_url(org_a, "presign-upload"), make_body(binding), format="json")
    assert response.status_code in (400, 404, 413), response.content
    assert_error_shape(response)
    assert StoredFile.objects.count() == 0
    assert AuditEvent.objects.count() == audits


@pytest.mark.parametrize(
    "raw",
    ["{", "[1, 2]", '"just a string"', "null", "\xff\xfe", '{"bindingId": NaN}'],
    ids=["truncated", "array", "string", "null", "not utf-8", "nan"],
)
def test_malformed_body_is_a_400(api, owner, org_a, binding, raw):
    response = api.as_user(owner).generic(
        "POST",
        files_url(org_a, "presign-upload"),
        raw.encode("latin-1"),
        content_type="application/x-www-form-urlencoded",
    )
    assert_error_shape(response, 400)
    assert StoredFile.objects.count() == 0


@pytest.mark.parametrize("file_id", ["not-a-uuid", "1", "00000000-0000-0000-0000-000000000000", "%00"])
def test_bad_file_ids_are_not_found(api, owner, org_a, file_id):
    api.as_user(owner)
    for response in (api.get(files_url(org_a, file_id)), api.post(files_url(org_a, file_id, "complete"))):
        assert_error_shape(response, 404)


def test_unicode_file_name_is_kept_and_downloads_under_it(api, owner, org_a, binding):
    response = api.as_user(owner).post(
        files_url(org_a, "presign-upload"), _body(binding, fileName="배포 빌드.tar.gz"), format="json"
    )
    assert response.status_code == 201
    assert StoredFile.objects.get().file_name == "배포 빌드.tar.gz"


def test_list_filters_by_binding_and_status_and_paginates(api, owner, org_a, binding):
    other = StorageBindingFactory(org=org_a)
    StoredFileFactory.create_batch(3, org=org_a, binding=binding, status=FileStatus.AVAILABLE)
    StoredFileFactory(org=org_a, binding=binding, status=FileStatus.FAILED)
    StoredFileFactory(org=org_a, binding=other, status=FileStatus.AVAILABLE)
    api.as_user(owner)
    assert api.get(files_url(org_a) + f"?bindingId={binding.pk}").json()["count"] == 4
    assert api.get(files_url(org_a) + f"?bindingId={binding.pk}&status=available").json()["count"] == 3
    page = api.get(files_url(org_a) + "?pageSize=2").json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["next"]
    assert_error_shape(api.get(files_url(org_a) + "?status=bogus"), 400)
    assert_error_shape(api.get(files_url(org_a) + "?bindingId=nope"), 400)


# --- query counts ------------------------------------------------------------------------------------------


def _count(callable_) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = callable_()
    assert response.status_code in (200, 201), response.content
    return len(ctx.captured_queries)


def test_presign_and_download_url_query_counts_do_not_grow_with_the_number_of_files(api, owner, org_a, binding):
    api.as_user(owner)
    available = StoredFileFactory(org=org_a, binding=binding, status=FileStatus.AVAILABLE)
    presign = lambda: api.post(files_url(org_a, "presign-upload"), _body(binding), format="json")  # noqa: E731
    download = lambda: api.get(files_url(org_a, available.pk, "download-url"))  # noqa: E731
    presign(), download()  # warm caches (content types, clients)
    few = (_count(presign), _count(download))
    StoredFileFactory.create_batch(40, org=org_a, binding=binding, status=FileStatus.AVAILABLE)
    many = (_count(presign), _count(download))
    assert few == many
    # JWT user, membership, binding, then insert + audit (in a savepoint): small and fixed.
    assert few[0] <= 8 and few[1] <= 4, few


def test_presign_with_an_api_token_is_the_token_query_the_binding_and_one_write(api, org_a, binding, org_token):
    api.as_token(org_token[1])
    presign = lambda: api.post(files_url(org_a, "presign-upload"), _body(binding), format="json")  # noqa: E731
    assert presign().status_code == 201  # warm-up: the token's last-used write happens once a minute
    with CaptureQueriesContext(connection) as ctx:
        response = presign()
    assert response.status_code == 201
    # PostgreSQL: the token's query, the binding, one write (the file and its audit row).
    # SQLite: the token, the binding, the file, the audit row.
    assert len(statements(ctx)) == per_backend(postgresql=3, sqlite=4), statements(ctx)
    file_id = response.json()["fileId"]
    assert StoredFile.objects.filter(pk=file_id, status=FileStatus.PENDING).exists()
    assert AuditEvent.objects.filter(action="file.upload_started", target_id=file_id).exists()


def test_json_body_without_content_type_is_accepted_like_the_docs_curl(api, owner, org_a, binding):
    response = api.as_user(owner).generic(
        "POST",
        files_url(org_a, "presign-upload"),
        json.dumps(_body(binding)),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 201
    assert StoredFile.objects.get(pk=response.json()["fileId"]).status == FileStatus.PENDING
