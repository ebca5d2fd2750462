"""JSON nested absurdly deep is a 400 in the error shape, on every API that reads a body,
never a RecursionError turned 500 (issue 11 item 6)."""

from __future__ import annotations

import pytest

from orgs.models import Organization

from .agents.signed import SignedAgent
from .factories import AgentFactory, TriggerFactory, make_token


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def _assert_400(response):
    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "malformed_request"
    assert "nested too deeply" in body["error"]["message"]


@pytest.mark.parametrize("depth", [40, 1_000, 5_000, 100_000])
def test_deep_json_is_a_400_on_the_user_api(api, owner, depth):
    api.as_user(owner)
    _assert_400(api.generic("POST", "/api/orgs", f'{{"name": "x", "slug": {nested(depth)}}}'))
    _assert_400(api.generic("PATCH", "/api/orgs/acme", f'{{"name": {nested(depth)}}}'))
    assert Organization.objects.count() == 1


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_json_is_a_400_on_the_run_endpoint(api, org_a, depth):
    trigger = TriggerFactory(org=org_a)
    _, raw = make_token(org_a)
    body = f'{{"ref": "main", "params": {{"A": {nested(depth)}}}}}'
    _assert_400(api.as_token(raw).generic("POST", f"/triggers/{trigger.pk}/run", body))


def test_deep_json_is_a_400_on_the_agent_protocol(org_a):
    agent = SignedAgent(AgentFactory(org=org_a))
    raw = f'{{"hostname": "h", "version": "1", "workflows": {nested(2_000, chr(34) + "x" + chr(34))}}}'.encode()
    _assert_400(agent.send("POST", "/api/agent/heartbeat", raw, agent.header("POST", "/api/agent/heartbeat", raw)))


def test_ordinary_nesting_still_parses(api, owner):
    response = api.as_user(owner).generic("PATCH", "/api/orgs/acme", '{"name": "Acme 2"}')
    assert response.status_code == 200
