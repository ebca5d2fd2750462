"""API conventions: JSON whatever the Content-Type, one error shape, never a 500 for bad input."""

import pytest
from django.urls import path

from orgs.models import ApiToken, AuditEvent, Invitation, Membership, Organization


def _assert_error_shape(response, status):
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] and body["error"]["message"]
    assert "Traceback" not in response.content.decode()


def _snapshot():
    return (
        Organization.objects.count(),
        Membership.objects.count(),
        Invitation.objects.count(),
        ApiToken.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.mark.parametrize("content_type", ["", "application/x-www-form-urlencoded", "text/plain", "application/json"])
def test_json_body_is_read_whatever_the_content_type(api, owner, org_a, content_type):
    response = api.as_user(owner).generic(
        "POST", "/api/orgs/acme/tokens", '{"name": "ci", "scopeType": "org"}', content_type=content_type
    )
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "ci"


BAD_INPUTS = [
    # (method, path, body, status)
    ("POST", "/api/orgs/acme/tokens", "{not json", 400),
    ("POST", "/api/orgs/acme/tokens", "[1, 2]", 400),
    ("POST", "/api/orgs/acme/tokens", '"a string"', 400),
    ("POST", "/api/orgs/acme/tokens", "\xff\xfe", 400),
    ("POST", "/api/orgs/acme/tokens", "{}", 201),  # a name is generated when none is given (the docs' JSON)
    ("POST", "/api/orgs/acme/tokens", '{"name": ""}', 201),
    ("POST", "/api/orgs/acme/tokens", '{"scopeType": "nope"}', 400),
    ("POST", "/api/orgs/acme/tokens", '{"name": 12}', 400),  # a string field takes a JSON string, as the schema says
    ("POST", "/api/orgs/acme/tokens", '{"name": ["a"]}', 400),
    ("POST", "/api/orgs/acme/tokens", '{"name": {"a": 1}}', 400),
    ("POST", "/api/orgs/acme/tokens", '{"name": "' + "x" * 101 + '"}', 400),
    ("POST", "/api/orgs/acme/tokens", '{"name": "x", "scopeType": null}', 400),
    ("POST", "/api/orgs/acme/tokens", '{"name": "x", "expiresAt": "tomorrow"}', 400),
    (
        "POST",
        "/api/orgs/acme/tokens",
        '{"name": "x", "scopeType": "storage", "bindingIds": "abc", "storagePermissions": ["read"]}',
        400,
    ),
    (
        "POST",
        "/api/orgs/acme/tokens",
        '{"name": "x", "scopeType": "storage", "bindingIds": ["00000000-0000-0000-0000-000000000001"], "storagePermissions": ["admin"]}',
        400,
    ),
    (
        "POST",
        "/api/orgs/acme/tokens",
        '{"name": "x", "scopeType": "storage", "bindingIds": ["00000000-0000-0000-0000-000000000001"], "storagePermissions": ["read"]}',
        400,
    ),  # unknown binding
    ("POST", "/api/orgs/acme/members", '{"email": "not-an-email"}', 400),
    ("POST", "/api/orgs/acme/members", '{"email": "a@b.test", "role": "god"}', 400),
    ("POST", "/api/orgs/acme/members", '{"email": null}', 400),
    ("PATCH", "/api/orgs/acme", '{"slug": "Bad Slug!"}', 400),
    ("PATCH", "/api/orgs/acme", '{"name": ""}', 400),
    ("PATCH", "/api/orgs/acme/members/not-a-uuid", '{"role": "admin"}', 404),
    ("DELETE", "/api/orgs/acme/tokens/00000000-0000-0000-0000-000000000000", "", 404),
    ("DELETE", "/api/orgs/acme/tokens/%00", "", 404),
    ("GET", "/api/orgs/does-not-exist", "", 404),
    ("GET", "/api/orgs/00000000-0000-0000-0000-000000000000/members", "", 404),
    ("GET", "/api/orgs/acme/no-such-endpoint", "", 404),
    ("GET", "/api/nothing-here", "", 404),
    ("PUT", "/api/orgs/acme", '{"name": "x"}', 405),
    ("POST", "/api/orgs", '{"name": ""}', 400),
    ("POST", "/api/orgs", '{"name": "x", "slug": "00000000-0000-0000-0000-000000000000"}', 400),
    ("POST", "/api/auth/token", '{"email": "x"}', 400),
    ("POST", "/api/auth/token", "{bad", 400),
    ("POST", "/api/auth/token/refresh", '{"refresh": "garbage"}', 401),
    ("GET", "/api/orgs/acme/members?page=999", "", 404),
    # A query value the API cannot use is refused, not silently replaced by a default.
    ("GET", "/api/orgs/acme/members?pageSize=abc", "", 400),
    ("GET", "/api/orgs/acme/members?pageSize=0", "", 400),
    ("GET", "/api/orgs/acme/members?page=", "", 400),
    ("GET", "/api/orgs/acme/members?page=last", "", 400),
    ("GET", "/api/orgs/acme/jobs?pageSize=-1", "", 400),
    ("GET", "/api/orgs/acme/jobs?status=", "", 400),
    ("GET", "/api/orgs/acme/jobs?trigger=", "", 400),
    ("GET", "/api/orgs/acme/triggers?enabled=maybe", "", 400),
    ("GET", "/api/orgs/acme/files?bindingId=", "", 400),
    ("GET", "/api/orgs/acme/members?pageSize=500", "", 200),  # capped at the maximum
    ("GET", "/api/orgs/acme/jobs?q=", "", 200),  # free text: empty is a valid search
]


@pytest.mark.parametrize("method,path,body,status", BAD_INPUTS, ids=[f"{m} {p} {b[:30]}" for m, p, b, _ in BAD_INPUTS])
def test_bad_input_gets_the_error_shape_and_writes_nothing(api, owner, org_a, method, path, body, status):
    api.as_user(owner)
    before = _snapshot()
    response = api.generic(method, path, body.encode("latin-1"), content_type="application/x-www-form-urlencoded")
    if status in (200, 201):
        assert response.status_code == status, response.content
        return
    _assert_error_shape(response, status)
    assert _snapshot() == before


def test_oversized_body_is_413_before_parsing(api, owner, org_a, settings):
    settings.DEPLITE_MAX_API_BODY_BYTES = 1024
    before = _snapshot()
    response = api.as_user(owner).generic(
        "POST", "/api/orgs/acme/tokens", '{"name": "' + "x" * 2000 + '"}', content_type=""
    )
    _assert_error_shape(response, 413)
    assert response.json()["error"]["code"] == "payload_too_large"
    assert _snapshot() == before


def test_unauthenticated_is_401_in_error_shape(api, org_a):
    _assert_error_shape(api.get("/api/orgs/acme"), 401)
    _assert_error_shape(api.get("/api/orgs"), 401)


def _boom(request):
    raise RuntimeError("secret internals")


urlpatterns = [path("api/boom", _boom)]


def test_unexpected_error_under_api_is_a_json_500_without_internals(client, settings, caplog):
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False
    response = client.get("/api/boom")
    _assert_error_shape(response, 500)
    assert "secret internals" not in response.content.decode()
    assert "secret internals" in caplog.text  # logged for the operators


def test_schema_and_swagger_ui_are_served_offline(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/orgs/{org_id}/tokens" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    # The UI's assets come from this server (drf-spectacular-sidecar), not a CDN.
    assert b"cdn.jsdelivr" not in docs.content and b"unpkg.com" not in docs.content
