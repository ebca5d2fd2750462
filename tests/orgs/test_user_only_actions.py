"""Credentials are minted by people, never by API tokens (issue 11 item 2)."""

import pytest

from agents.models import Agent
from orgs.models import ApiToken
from tests.factories import AgentFactory, make_token


def _assert_user_required(response):
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert "sign in" in error["message"]
    assert set(error) == {"code", "message", "details"}


def test_org_token_cannot_create_or_rotate_agents(api, org_a):
    agent = AgentFactory(org=org_a)
    old_secret = agent.secret
    _, raw = make_token(org_a)
    api.as_token(raw)
    _assert_user_required(api.post("/api/orgs/acme/agents", {"name": "rogue"}, format="json"))
    _assert_user_required(api.post(f"/api/orgs/acme/agents/{agent.id}/rotate-secret"))
    _assert_user_required(api.delete(f"/api/orgs/acme/agents/{agent.id}"))
    assert Agent.objects.count() == 1
    agent.refresh_from_db()
    assert agent.secret == old_secret and agent.revoked_at is None
    # Reading stays allowed.
    assert api.get("/api/orgs/acme/agents").status_code == 200


def test_org_token_cannot_create_tokens_or_manage_members(api, org_a):
    _, raw = make_token(org_a)
    api.as_token(raw)
    _assert_user_required(api.post("/api/orgs/acme/tokens", {"name": "successor"}, format="json"))
    _assert_user_required(api.post("/api/orgs/acme/members", {"email": "x@x.test"}, format="json"))
    assert ApiToken.objects.count() == 1


@pytest.mark.parametrize("role_fixture", ["owner", "admin_user"])
def test_owner_and_admin_still_create_and_rotate_agents(api, org_a, role_fixture, request):
    api.as_user(request.getfixturevalue(role_fixture))
    created = api.post("/api/orgs/acme/agents", {"name": "web-1"}, format="json")
    assert created.status_code == 201
    rotated = api.post(f"/api/orgs/acme/agents/{created.json()['id']}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != created.json()["secret"]


def test_org_token_permissions_hold_no_integration_install():
    from orgs.permissions import ORG_TOKEN_PERMISSIONS, Perm

    assert Perm.INTEGRATIONS_MANAGE not in ORG_TOKEN_PERMISSIONS
    assert Perm.AGENTS_MANAGE not in ORG_TOKEN_PERMISSIONS
