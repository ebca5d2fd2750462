"""Database down → a retryable 503 in the error shape with Retry-After, for the API and the agent protocol
alike, never a 500. (The fault drill in tests/drills/ stops a real PostgreSQL; here every query fails the
way psycopg fails when the server is gone, so each entry point is covered quickly.)"""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

from tests.agents.signed import SignedAgent

from .factories import AgentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_down(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise OperationalError("connection failed: server closed the connection unexpectedly")

    def down():
        monkeypatch.setattr(BaseDatabaseWrapper, "cursor", refuse)

    return down


def assert_unavailable(response):
    assert response.status_code == 503, response.content
    assert response["Retry-After"].isdigit()
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "service_unavailable"
    assert "Traceback" not in response.content.decode()


def test_the_api_answers_503_with_retry_after_when_the_database_is_down(api, owner, org_a, org_token, database_down):
    as_user = api.as_user(owner)
    database_down()
    assert_unavailable(as_user.get(f"/api/orgs/{org_a.slug}/jobs"))
    assert_unavailable(api.as_token(org_token[1]).get(f"/api/orgs/{org_a.slug}/triggers"))


def test_the_agent_protocol_answers_503_with_retry_after_when_the_database_is_down(org_a, database_down):
    agent = SignedAgent(AgentFactory(org=org_a))
    database_down()
    assert_unavailable(agent.heartbeat())
    assert_unavailable(agent.claim(wait=0))
    assert_unavailable(agent.get("/api/agent/files/7d1c4bb4-5b8e-4f37-a3a2-0c8b3d1e4c11/download-url"))


def test_a_page_answers_a_plain_503_when_the_database_is_down(client, owner, org_a, database_down):
    client.force_login(owner)
    database_down()
    response = client.get(f"/orgs/{org_a.slug}/jobs/")
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert "temporarily unavailable" in response.content.decode()
