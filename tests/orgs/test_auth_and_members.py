import re

from django.core import mail

from orgs.models import AuditEvent, Invitation, Membership, Role
from tests.factories import UserFactory


def test_jwt_login_and_refresh(api, owner, org_a):
    response = api.generic(
        "POST",
        "/api/auth/token",
        '{"email": "Owner@acme.test", "password": "correct-horse-battery"}',
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    pair = response.json()
    api.client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert api.get("/api/orgs").json()["results"][0]["slug"] == "acme"

    refreshed = api.anonymous().post("/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 200
    assert refreshed.json()["access"]


def test_bad_password_is_401_in_error_shape_and_rate_limited(api, owner, settings, one_rate_limit_window):
    settings.DEPLITE_LOGIN_RATE = (3, 60)
    body = {"email": "owner@acme.test", "password": "wrong"}
    statuses = [api.post("/api/auth/token", body, format="json").status_code for _ in range(6)]
    # Three failures tolerated, a fourth attempt still checked; then the account waits.
    assert statuses == [401, 401, 401, 401, 429, 429]
    # Passwords can be guessed: from this address this account waits out the window.
    last = api.post("/api/auth/token", {"email": "owner@acme.test", "password": "correct-horse-battery"}, format="json")
    assert last.status_code == 429
    assert last.json()["error"]["code"] == "rate_limited"


def test_garbage_jwt_is_401(api, org_a):
    api.client.credentials(HTTP_AUTHORIZATION="Bearer eyJhbGciOiJIUzI1NiJ9.e30.bad")
    response = api.get("/api/orgs/acme")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_create_org_makes_caller_owner_and_is_audited(api, member):
    response = api.as_user(member).post("/api/orgs", {"name": "New Co"}, format="json")
    assert response.status_code == 201
    slug = response.json()["slug"]
    assert slug == "new-co"
    assert Membership.objects.get(org__slug=slug, user=member).role == Role.OWNER
    assert AuditEvent.objects.filter(org__slug=slug, action="org.created", actor_label=member.email).exists()
    assert api.post("/api/orgs", {"name": "x", "slug": "new-co"}, format="json").status_code == 409


def test_org_is_reachable_by_slug_and_uuid(api, member, org_a):
    api.as_user(member)
    assert api.get("/api/orgs/acme").json()["id"] == str(org_a.id)
    assert api.get(f"/api/orgs/{org_a.id}").json()["slug"] == "acme"
    assert api.get("/api/orgs/nope").status_code == 404


def test_member_can_read_but_not_change_org(api, member, org_a):
    api.as_user(member)
    assert api.patch("/api/orgs/acme", {"name": "Mine"}, format="json").status_code == 403
    assert api.get("/api/orgs/acme/audit").status_code == 403
    org_a.refresh_from_db()
    assert org_a.name != "Mine"


def _account(email, *, verified):
    from allauth.account.models import EmailAddress

    user = UserFactory(email=email)
    EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
    return user


def test_adding_an_unverified_account_never_joins_it(api, owner, org_a):
    # The takeover: an attacker registers the new hire's address first, never verifies it.
    attacker = _account("newhire@acme.test", verified=False)
    response = api.as_user(owner).post(
        "/api/orgs/acme/members", {"email": "NewHire@acme.test", "role": "admin"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["status"] == "invited"
    assert not Membership.objects.filter(org=org_a, user=attacker).exists()

    invitation = Invitation.objects.get(org=org_a, email="newhire@acme.test")
    api.as_user(attacker)
    assert api.get("/api/orgs/acme").status_code == 404
    assert api.get("/api/orgs").json()["results"] == []
    assert api.get("/api/invitations").json() == []
    refused = api.post(f"/api/invitations/{invitation.id}/accept")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "email_not_verified"
    assert not Membership.objects.filter(org=org_a, user=attacker).exists()
    assert api.get("/api/orgs/acme/members").status_code == 404


def test_a_verified_account_joins_only_when_it_accepts(api, owner, org_a):
    dev = _account("dev@acme.test", verified=True)
    response = api.as_user(owner).post("/api/orgs/acme/members", {"email": "DEV@acme.test"}, format="json")
    assert response.status_code == 201 and response.json()["status"] == "invited"
    assert api.post("/api/orgs/acme/members", {"email": "dev@acme.test"}, format="json").status_code == 409
    assert not Membership.objects.filter(org=org_a, user=dev).exists()

    api.as_user(dev)
    assert api.get("/api/orgs/acme").status_code == 404
    [listed] = api.get("/api/invitations").json()
    assert listed["orgSlug"] == "acme" and listed["role"] == "member" and listed["invitedBy"] == owner.email

    # Someone else cannot accept it, even knowing its id.
    other = _account("other@acme.test", verified=True)
    assert api.as_user(other).post(f"/api/invitations/{listed['id']}/accept").status_code == 404

    joined = api.as_user(dev).post(f"/api/invitations/{listed['id']}/accept")
    assert joined.status_code == 200 and joined.json()["orgSlug"] == "acme"
    assert Membership.objects.get(org=org_a, user=dev).role == Role.MEMBER
    assert api.get("/api/orgs/acme").status_code == 200
    assert AuditEvent.objects.filter(org=org_a, action="member.joined", actor_label="dev@acme.test").exists()
    assert api.post(f"/api/invitations/{listed['id']}/accept").status_code == 404  # once
    assert (
        api.as_user(owner)
        .post("/api/orgs/acme/members", {"email": "dev@acme.test"}, format="json")
        .json()["error"]["code"]
        == "already_member"
    )


def test_an_api_token_cannot_accept_invitations(api, org_a):
    from tests.factories import make_token

    _, raw = make_token(org_a)
    response = api.as_token(raw).get("/api/invitations")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_adding_an_unknown_email_invites_and_the_verified_signup_accepts_on_the_page(
    client, api, owner, org_a, settings, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_user(owner).post(
            "/api/orgs/acme/members", {"email": "new@acme.test", "role": "admin"}, format="json"
        )
    assert response.status_code == 201 and response.json()["status"] == "invited"
    assert Invitation.objects.filter(org=org_a, email="new@acme.test", accepted_at=None).exists()
    assert [m.to for m in mail.outbox] == [["new@acme.test"]]
    assert "accept the invitation" in mail.outbox[0].body

    # Signing up alone does not join: the address is not proven yet.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/accounts/signup/",
            {"email": "new@acme.test", "password1": "a-Long-pass-123", "password2": "a-Long-pass-123"},
        )
    assert not Membership.objects.filter(org=org_a, user__email="new@acme.test").exists()

    confirmation = mail.outbox[-1].body
    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", confirmation).group(0)
    path = "/" + link.split("/", 3)[3]
    client.post(path)
    # Confirming proves the address; joining is still the person's own choice.
    assert not Membership.objects.filter(org=org_a, user__email="new@acme.test").exists()

    client.post("/accounts/login/", {"login": "new@acme.test", "password": "a-Long-pass-123"})
    page = client.get("/")
    assert page.status_code == 200 and "Acme" in page.content.decode()
    invitation = Invitation.objects.get(email="new@acme.test")
    accepted = client.post(f"/invitations/{invitation.id}/accept")
    assert accepted.status_code == 302 and accepted.url == "/orgs/acme/"
    assert Membership.objects.get(org=org_a, user__email="new@acme.test").role == Role.ADMIN
    assert Invitation.objects.get(email="new@acme.test").accepted_at is not None


def test_admin_cannot_make_or_remove_owners_and_last_owner_stays(api, owner, admin_user, member, org_a):
    member_row = Membership.objects.get(user=member)
    owner_row = Membership.objects.get(user=owner)
    api.as_user(admin_user)
    assert api.patch(f"/api/orgs/acme/members/{member_row.id}", {"role": "owner"}, format="json").status_code == 403
    assert api.delete(f"/api/orgs/acme/members/{owner_row.id}").status_code == 403
    assert api.patch(f"/api/orgs/acme/members/{member_row.id}", {"role": "admin"}, format="json").status_code == 200

    api.as_user(owner)
    response = api.patch(f"/api/orgs/acme/members/{owner_row.id}", {"role": "member"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_owner"
    assert api.delete(f"/api/orgs/acme/members/{member_row.id}").status_code == 204
    assert not Membership.objects.filter(pk=member_row.pk).exists()
    assert AuditEvent.objects.filter(action="member.removed").count() == 1


def test_member_patch_is_partial_a_body_without_role_changes_nothing(api, owner, member, org_a):
    member_row = Membership.objects.get(user=member)
    api.as_user(owner)
    response = api.patch(f"/api/orgs/acme/members/{member_row.id}", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["role"] == Role.MEMBER
    assert Membership.objects.get(pk=member_row.pk).role == Role.MEMBER
    assert not AuditEvent.objects.filter(action="member.role_changed").exists()
    bad = api.patch(f"/api/orgs/acme/members/{member_row.id}", {"role": "king"}, format="json")
    assert bad.status_code == 400 and "role" in bad.json()["error"]["details"]["fields"]


def test_removed_member_loses_access(api, owner, member, org_a):
    api.as_user(member)
    assert api.get("/api/orgs/acme").status_code == 200
    Membership.objects.filter(user=member).delete()
    assert api.get("/api/orgs/acme").status_code == 404


def test_audit_lists_newest_first_for_admins(api, owner, org_a):
    api.as_user(owner)
    api.patch("/api/orgs/acme", {"name": "A1"}, format="json")
    api.patch("/api/orgs/acme", {"name": "A2"}, format="json")
    results = api.get("/api/orgs/acme/audit").json()["results"]
    assert [r["action"] for r in results][:2] == ["org.updated", "org.updated"]
    assert results[0]["data"] == {"name": "A2"}
    assert results[0]["actorLabel"] == "owner@acme.test"


def test_password_reset_link_is_on_the_public_url_whatever_host_the_request_named(owner, settings):
    # A server reachable under several names (or `*`): the Host is the client's choice, and a
    # reset link on a stranger's host would hand them the key (issue 18 item 8).
    from urllib.parse import urlsplit

    from django.test import Client

    settings.DEPLITE_PUBLIC_URL = "https://app.deplite.example"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "evil.example"]
    response = Client(HTTP_HOST="evil.example").post("/accounts/password/reset/", {"email": "owner@acme.test"})
    assert response.status_code == 302
    body = mail.outbox[-1].body
    assert "evil.example" not in body
    link = re.search(r"\S+/accounts/password/reset/key/\S+/", body).group(0)
    assert link.startswith("https://app.deplite.example/accounts/password/reset/key/")
    # The key in it works on this server.
    opened = Client().get(urlsplit(link).path, follow=True)
    assert opened.status_code == 200 and 'name="password1"' in opened.content.decode()
