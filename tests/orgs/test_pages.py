"""Org pages use the same resolver and permissions as the API."""

from orgs.models import ApiToken, AuditEvent, Membership


def test_outsider_gets_404_on_every_org_page(client, outsider, org_a):
    client.force_login(outsider)
    for path in ("/orgs/acme/", "/orgs/acme/members/", "/orgs/acme/tokens/", "/orgs/acme/audit/"):
        assert client.get(path).status_code == 404, path


def test_anonymous_is_sent_to_login(client, org_a):
    response = client.get("/orgs/acme/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_member_sees_members_but_not_tokens_or_audit(client, member, org_a):
    client.force_login(member)
    page = client.get("/orgs/acme/members/")
    assert page.status_code == 200
    assert b"member@acme.test" in page.content
    assert b"Add a member" not in page.content
    assert client.get("/orgs/acme/tokens/").status_code == 403
    assert client.get("/orgs/acme/audit/").status_code == 403
    assert client.post("/orgs/acme/members/", {"email": "x@y.test", "role": "member"}).status_code == 403
    assert Membership.objects.count() == 1


def test_token_created_in_the_page_is_shown_once(client, owner, org_a):
    client.force_login(owner)
    response = client.post("/orgs/acme/tokens/", {"name": "deploy-bot", "scope_type": "org"}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [("/orgs/acme/tokens/", 302)]  # a reload cannot mint another
    token = ApiToken.objects.get(name="deploy-bot")
    raw = response.context["created"]["raw"]
    assert raw.startswith(token.prefix) and raw.encode() in response.content
    again = client.get("/orgs/acme/tokens/")
    assert raw.encode() not in again.content
    assert token.prefix.encode() in again.content


def test_revoke_from_the_page_cannot_reach_another_orgs_token(client, owner, org_a, org_b, outsider_token):
    client.force_login(owner)
    other, _ = outsider_token
    assert client.post("/orgs/acme/tokens/", {"revoke": str(other.id)}).status_code == 404
    assert client.post("/orgs/acme/tokens/", {"revoke": "not-a-uuid"}).status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None
    assert not AuditEvent.objects.filter(action="token.revoked").exists()
