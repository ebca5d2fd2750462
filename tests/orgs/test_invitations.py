"""Invitations expire and can be withdrawn, by owners and admins only, both audited
(issue 18 item 8)."""

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.utils import timezone

from orgs.models import AuditEvent, Invitation, Membership
from tests.factories import UserFactory, make_token

pytestmark = pytest.mark.django_db


def _invite(api, owner, email="dev@acme.test") -> dict:
    response = api.as_user(owner).post("/api/orgs/acme/members", {"email": email}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _verified(email="dev@acme.test"):
    user = UserFactory(email=email)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def _age(invitation_id, **delta):
    Invitation.objects.filter(pk=invitation_id).update(created_at=timezone.now() - timedelta(**delta))


def test_an_invitation_says_when_it_expires_seven_days_by_default(api, owner, org_a):
    invited = _invite(api, owner)
    row = Invitation.objects.get(pk=invited["id"])
    assert row.expires_at - row.created_at == timedelta(days=7)
    assert invited["status"] == "invited"
    assert invited["expiresAt"].startswith(row.expires_at.strftime("%Y-%m-%dT%H:%M:%S"))


def test_an_expired_invitation_cannot_be_accepted_and_says_so(api, owner, org_a, settings):
    settings.DEPLITE_INVITATION_EXPIRY_SECONDS = 3600
    invited = _invite(api, owner)
    _age(invited["id"], hours=1, seconds=1)
    person = _verified()

    mine = api.as_user(person).get("/api/invitations").json()
    assert [(i["id"], i["expired"]) for i in mine] == [(invited["id"], True)]
    refused = api.as_user(person).post(f"/api/invitations/{invited['id']}/accept")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "invitation_expired" and "expired" in error["message"]
    assert "invite you again" in error["message"]
    assert not Membership.objects.filter(user=person).exists()

    # The dashboard says so too, with nothing to accept.
    browser = Client()
    browser.force_login(person)
    page = browser.get("/").content.decode()
    assert f"Ask an owner or admin of {org_a.name} to invite you again" in page
    assert f"/invitations/{invited['id']}/accept" not in page
    accepted = browser.post(f"/invitations/{invited['id']}/accept")
    assert accepted.status_code == 302 and not Membership.objects.filter(user=person).exists()

    listed = api.as_user(owner).get("/api/orgs/acme/invitations").json()["results"]
    assert [(i["id"], i["status"]) for i in listed] == [(invited["id"], "expired")]


def test_inviting_again_after_expiry_renews_the_invitation(api, owner, org_a, django_capture_on_commit_callbacks):
    invited = _invite(api, owner)
    _age(invited["id"], days=8)
    with django_capture_on_commit_callbacks(execute=True):
        again = api.as_user(owner).post("/api/orgs/acme/members", {"email": "dev@acme.test"}, format="json")
    assert again.status_code == 201 and again.json()["status"] == "invited"
    assert "valid until" in mail.outbox[-1].body
    person = _verified()
    assert api.as_user(person).post(f"/api/invitations/{again.json()['id']}/accept").status_code == 200
    assert Membership.objects.filter(user=person, org=org_a).exists()


def test_an_admin_withdraws_an_invitation_in_the_api_and_it_is_audited(api, admin_user, owner, org_a):
    invited = _invite(api, owner)
    response = api.as_user(admin_user).delete(f"/api/orgs/acme/invitations/{invited['id']}")
    assert response.status_code == 204
    assert not Invitation.objects.filter(pk=invited["id"]).exists()
    event = AuditEvent.objects.get(org=org_a, action="member.invitation_withdrawn")
    assert (event.target_id, event.actor_label, event.data) == (
        invited["id"],
        admin_user.email,
        {"email": "dev@acme.test", "role": "member"},
    )
    # It can no longer be accepted, and the address can be invited again.
    person = _verified()
    assert api.as_user(person).post(f"/api/invitations/{invited['id']}/accept").status_code == 404
    assert api.as_user(admin_user).delete(f"/api/orgs/acme/invitations/{invited['id']}").status_code == 404
    _invite(api, owner)


def test_only_owners_and_admins_withdraw_and_another_orgs_invitation_is_a_404(
    api, owner, member, outsider, org_a, org_b
):
    invited = _invite(api, owner)
    theirs = Invitation.objects.create(org=org_b, email="x@bravo.test")
    url = f"/api/orgs/acme/invitations/{invited['id']}"

    refused = api.as_user(member).delete(url)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    _, raw = make_token(org_a)
    assert api.as_token(raw).delete(url).status_code == 403
    assert api.as_user(outsider).delete(url).status_code == 404
    # Named under org_a's URL, org_b's invitation does not exist.
    missing = api.as_user(owner).delete(f"/api/orgs/acme/invitations/{theirs.id}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert Invitation.objects.count() == 2
    assert not AuditEvent.objects.filter(action="member.invitation_withdrawn").exists()


def test_the_members_page_withdraws_for_admins_only(owner, member, org_a, org_b):
    mine = Invitation.objects.create(org=org_a, email="dev@acme.test")
    theirs = Invitation.objects.create(org=org_b, email="x@bravo.test")
    as_member = Client()
    as_member.force_login(member)
    page = as_member.get("/orgs/acme/members/").content.decode()
    assert "dev@acme.test" in page and "Withdraw" not in page
    assert as_member.post("/orgs/acme/members/", {"withdraw": str(mine.id)}).status_code == 403

    as_owner = Client()
    as_owner.force_login(owner)
    page = as_owner.get("/orgs/acme/members/").content.decode()
    assert f'name="withdraw" value="{mine.id}"' in page and "expires" in page
    assert as_owner.post("/orgs/acme/members/", {"withdraw": str(theirs.id)}).status_code == 404
    done = as_owner.post("/orgs/acme/members/", {"withdraw": str(mine.id)}, follow=True)
    assert "Withdrew the invitation to dev@acme.test" in done.content.decode()
    assert list(Invitation.objects.values_list("email", flat=True)) == ["x@bravo.test"]
    assert AuditEvent.objects.filter(org=org_a, action="member.invitation_withdrawn", actor_label=owner.email).exists()
