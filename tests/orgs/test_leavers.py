"""A person who leaves keeps no access through the API tokens they created (issue 11 item 3)."""

from orgs.models import ApiToken, AuditEvent, Membership
from tests.factories import make_token


def test_removing_a_member_revokes_the_tokens_they_created_and_audits_it(api, owner, admin_user, org_a, org_b):
    mine, raw = make_token(org_a, created_by=admin_user, name="admin's ci")
    others, others_raw = make_token(org_a, created_by=owner, name="owner's ci")
    assert api.as_token(raw).get("/api/orgs/acme").status_code == 200

    row = Membership.objects.get(user=admin_user, org=org_a)
    assert api.as_user(owner).delete(f"/api/orgs/acme/members/{row.id}").status_code == 204

    assert api.as_token(raw).get("/api/orgs/acme").status_code == 401
    assert api.as_token(others_raw).get("/api/orgs/acme").status_code == 200
    assert ApiToken.objects.get(pk=mine.pk).revoked_at is not None
    assert ApiToken.objects.get(pk=others.pk).revoked_at is None
    revoked = AuditEvent.objects.get(org=org_a, action="token.revoked")
    assert revoked.target_id == str(mine.pk)
    assert revoked.data["reason"] == "member removed" and revoked.data["createdBy"] == admin_user.email
    removed = AuditEvent.objects.get(org=org_a, action="member.removed")
    assert removed.data["revokedTokens"] == [mine.prefix]


def test_deactivating_a_user_revokes_their_tokens_in_every_org(api, admin_user, org_a, org_b):
    from tests.factories import MembershipFactory

    MembershipFactory(org=org_b, user=admin_user)
    _, raw_a = make_token(org_a, created_by=admin_user)
    _, raw_b = make_token(org_b, created_by=admin_user)
    admin_user.is_active = False
    admin_user.save()
    assert api.as_token(raw_a).get("/api/orgs/acme").status_code == 401
    assert api.as_token(raw_b).get("/api/orgs/bravo").status_code == 401
    events = AuditEvent.objects.filter(action="token.revoked")
    assert {e.org_id for e in events} == {org_a.pk, org_b.pk}
    assert {e.data["reason"] for e in events} == {"user deactivated"}
    assert {e.actor_kind for e in events} == {"system"}


def test_deleting_a_user_revokes_their_tokens(api, admin_user, org_a):
    token, raw = make_token(org_a, created_by=admin_user)
    admin_user.delete()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert api.as_token(raw).get("/api/orgs/acme").status_code == 401


def test_a_membership_deleted_outside_the_service_also_ends_its_tokens(api, admin_user, org_a):
    # The admin site or a shell can delete a membership without the service: the token's
    # creator must still be a member for it to authenticate.
    _, raw = make_token(org_a, created_by=admin_user)
    Membership.objects.filter(user=admin_user).delete()
    response = api.as_token(raw).get("/api/orgs/acme")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
