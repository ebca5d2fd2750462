import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orgs import tokens
from orgs.models import ApiToken, AuditEvent, Invitation, TokenScope
from orgs.scoping import OrgScopedViewSet
from tests.factories import StorageBindingFactory, make_token


def test_token_is_shown_once_and_only_its_hash_is_stored(api, owner, org_a):
    response = api.as_user(owner).post("/api/orgs/acme/tokens", {"name": "ci", "scopeType": "org"}, format="json")
    assert response.status_code == 201
    raw = response.json()["token"]
    assert raw.startswith("tk_") and tokens.is_well_formed(raw)

    row = ApiToken.objects.get(pk=response.json()["id"])
    assert row.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in repr(list(ApiToken.objects.values_list()))
    assert row.prefix == raw[:12]

    listing = api.get("/api/orgs/acme/tokens").content.decode()
    assert raw not in listing and row.token_hash not in listing
    assert row.prefix in listing
    audit = AuditEvent.objects.get(action="token.created")
    assert raw not in repr(audit.data)


def test_created_token_authenticates_and_records_last_use_at_most_once_a_minute(api, owner, org_a):
    raw = api.as_user(owner).post("/api/orgs/acme/tokens", {"name": "ci"}, format="json").json()["token"]
    api.as_token(raw)
    assert api.get("/api/orgs/acme").status_code == 200
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as ctx:
        assert api.get("/api/orgs/acme").status_code == 200
    assert not any("UPDATE" in q["sql"] for q in ctx.captured_queries)
    assert ApiToken.objects.get().last_used_at == first


@pytest.mark.parametrize(
    "bad",
    [
        "tk_" + "A" * 36,  # right length, wrong checksum
        "tk_short",
        "tk_" + "!" * 36,
    ],
)
def test_malformed_token_is_rejected_without_a_query(api, org_a, bad):
    api.as_token(bad)
    with CaptureQueriesContext(connection) as ctx:
        response = api.get("/api/orgs/acme")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert len(ctx.captured_queries) == 0


def test_a_wellformed_token_that_was_never_issued_is_rejected(api, org_a):
    response = api.as_token(tokens.generate()).get("/api/orgs/acme")
    assert response.status_code == 401


def test_revoked_token_stops_working_and_revoke_is_idempotent(api, owner, org_a):
    token, raw = make_token(org_a)
    assert api.as_token(raw).get("/api/orgs/acme").status_code == 200
    api.as_user(owner)
    assert api.delete(f"/api/orgs/acme/tokens/{token.id}").status_code == 200
    first = ApiToken.objects.get(pk=token.pk).revoked_at
    assert api.delete(f"/api/orgs/acme/tokens/{token.id}").status_code == 200
    assert ApiToken.objects.get(pk=token.pk).revoked_at == first
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1
    assert api.as_token(raw).get("/api/orgs/acme").status_code == 401


def test_expired_token_is_rejected(api, org_a):
    _, raw = make_token(org_a, expires_at=timezone.now() - timedelta(seconds=1))
    response = api.as_token(raw).get("/api/orgs/acme")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_org_token_acts_like_admin_but_cannot_manage_members_or_tokens(api, org_a, member):
    _, raw = make_token(org_a)
    api.as_token(raw)
    assert api.patch("/api/orgs/acme", {"name": "Acme Inc"}, format="json").status_code == 200
    assert api.get("/api/orgs/acme/audit").status_code == 200
    assert api.get("/api/orgs/acme/members").status_code == 200
    assert api.post("/api/orgs/acme/members", {"email": "new@x.test"}, format="json").status_code == 403
    assert api.get("/api/orgs/acme/tokens").status_code == 403
    assert api.post("/api/orgs/acme/tokens", {"name": "escalate"}, format="json").status_code == 403
    org_a.refresh_from_db()
    assert org_a.name == "Acme Inc"
    assert not Invitation.objects.filter(email="new@x.test").exists()
    assert not ApiToken.objects.filter(name="escalate").exists()


@pytest.mark.parametrize("scope", [TokenScope.STORAGE, TokenScope.TRIGGER])
def test_narrow_tokens_cannot_use_org_endpoints(api, org_a, scope):
    fields = (
        {"binding_ids": ["00000000-0000-0000-0000-000000000001"], "storage_permissions": ["read"]}
        if scope == TokenScope.STORAGE
        else {"trigger_ids": ["00000000-0000-0000-0000-000000000001"]}
    )
    _, raw = make_token(org_a, scope_type=scope, **fields)
    api.as_token(raw)
    assert api.get("/api/orgs/acme").status_code == 403
    assert api.get("/api/orgs/acme/members").status_code == 403
    assert api.get("/api/orgs/acme/audit").status_code == 403


def test_token_create_validates_scope_fields(api, owner, org_a):
    api.as_user(owner)
    cases = [
        ({"name": "s", "scopeType": "storage"}, "bindingIds"),
        (
            {"name": "s", "scopeType": "storage", "bindingIds": ["not-a-uuid"], "storagePermissions": ["read"]},
            "bindingIds",
        ),
        ({"name": "t", "scopeType": "trigger"}, "triggerIds"),
        ({"name": "o", "scopeType": "org", "triggerIds": ["00000000-0000-0000-0000-000000000001"]}, "triggerIds"),
        ({"name": "x", "scopeType": "root"}, "scopeType"),
        ({"name": "x", "expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
    ]
    for body, field in cases:
        response = api.post("/api/orgs/acme/tokens", body, format="json")
        assert response.status_code == 400, body
        assert field in response.json()["error"]["message"] + str(response.json()["error"]["details"]), body
    assert ApiToken.objects.count() == 0


def test_member_cannot_manage_tokens(api, member, org_a):
    assert api.as_user(member).post("/api/orgs/acme/tokens", {"name": "x"}, format="json").status_code == 403
    assert not ApiToken.objects.filter(org=org_a, name="x").exists()


def test_failed_token_auth_is_rate_limited(api, org_a, settings, one_rate_limit_window):
    settings.DEPLITE_TOKEN_FAILURE_RATE = (5, 60)
    _, good = make_token(org_a)
    api.as_token(tokens.generate())
    statuses = [api.get("/api/orgs/acme").status_code for _ in range(7)]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]
    assert api.get("/api/orgs/acme").json()["error"]["code"] == "rate_limited"
    # A valid token from that address still goes through: it cannot be guessed anyway.
    assert api.as_token(good).get("/api/orgs/acme").status_code == 200


def test_scoping_base_refuses_subclasses_that_override_its_hooks():
    with pytest.raises(TypeError, match="bypass org scoping"):

        class Sneaky(OrgScopedViewSet):
            def get_queryset(self):
                return ApiToken.objects.all()


def test_the_docs_permissions_json_creates_a_token_with_a_generated_name(api, owner, org_a):
    binding = StorageBindingFactory(org=org_a)
    # The docs' snippet verbatim, with only the binding id filled in (no name, no Content-Type).
    body = f'{{ "scopeType": "storage", "bindingIds": ["{binding.pk}"], "storagePermissions": ["read", "write"] }}'
    response = api.as_user(owner).generic("POST", "/api/orgs/acme/tokens", body, content_type="")
    assert response.status_code == 201, response.content
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert token.name.startswith("storage token ") and token.storage_permissions == ["read", "write"]
    assert response.json()["name"] == token.name


def test_a_demoted_admins_token_can_do_no_more_than_their_new_role(api, owner, admin_user, org_a):
    """A token never does more than its creator's current role allows (issue 18 item 7)."""
    created = api.as_user(admin_user).post("/api/orgs/acme/tokens", {"name": "ci", "scopeType": "org"}, format="json")
    raw = created.json()["token"]
    trigger = {"name": "deploy-prod", "workflow": "deploy"}
    assert api.as_token(raw).post("/api/orgs/acme/triggers", trigger, format="json").status_code == 201

    membership = org_a.memberships.get(user=admin_user)
    demoted = api.as_user(owner).patch(f"/api/orgs/acme/members/{membership.id}", {"role": "member"}, format="json")
    assert demoted.status_code == 200

    # The same 403 as the demoted admin's own login, for every write a member may not make.
    for caller in (api.as_user(admin_user), api.as_token(raw)):
        refused = caller.post("/api/orgs/acme/triggers", {**trigger, "name": "again"}, format="json")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        binding = caller.post("/api/orgs/acme/storage/bindings", {"name": "b"}, format="json")
        assert binding.status_code == 403 and binding.json()["error"]["code"] == "forbidden"
    # What a member may do, the token still does.
    assert api.as_token(raw).get("/api/orgs/acme/triggers").status_code == 200
    assert org_a.triggers.count() == 1

    # Promoted back, the token has its power back: it follows the role, it is not revoked.
    api.as_user(owner).patch(f"/api/orgs/acme/members/{membership.id}", {"role": "admin"}, format="json")
    assert (
        api.as_token(raw).post("/api/orgs/acme/triggers", {**trigger, "name": "again"}, format="json").status_code
        == 201
    )
