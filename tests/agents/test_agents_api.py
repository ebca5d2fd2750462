"""Agent management API: the secret is shown once and stored encrypted; revoke; rotate; roles; isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from agents.models import Agent
from agents.tasks import agents_reap_lost
from orgs.models import AuditEvent
from triggers.models import JobStatus

from ..factories import AgentFactory, JobFactory
from .signed import SignedAgent


def test_create_returns_the_secret_once_and_stores_it_encrypted(api, admin_user):
    response = api.as_user(admin_user).post(
        "/api/orgs/acme/agents", {"name": "web-1", "labels": ["prod", "eu"]}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("das_") and len(secret) > 40
    assert body["labels"] == ["eu", "prod"] and body["status"] == "offline"
    # Read the column as plain text, bypassing the field's decryption.
    stored = Agent.objects.filter(pk=body["id"]).annotate(raw=Cast("secret", TextField())).get().raw
    assert stored and secret not in stored
    # Later reads never show it.
    listed = api.get("/api/orgs/acme/agents").json()["results"]
    assert listed[0]["id"] == body["id"] and "secret" not in listed[0]
    assert "secret" not in api.get(f"/api/orgs/acme/agents/{body['id']}").json()
    # And it works for signing.
    assert SignedAgent(Agent.objects.get(pk=body["id"]), secret=secret).heartbeat().status_code == 200
    assert not any(secret in str(e.data) for e in AuditEvent.objects.all())


def test_online_is_derived_from_recent_heartbeats(api, member, org_a):
    agent = AgentFactory(org=org_a, last_seen_at=timezone.now() - timedelta(seconds=61))
    api.as_user(member)
    assert api.get(f"/api/orgs/acme/agents/{agent.pk}").json()["status"] == "offline"
    SignedAgent(agent).heartbeat()
    assert api.get(f"/api/orgs/acme/agents/{agent.pk}").json()["status"] == "online"


def test_member_can_list_but_not_create_revoke_or_rotate(api, member, org_a):
    agent = AgentFactory(org=org_a)
    api.as_user(member)
    assert api.get("/api/orgs/acme/agents").status_code == 200
    assert api.post("/api/orgs/acme/agents", {"name": "x"}, format="json").status_code == 403
    assert api.delete(f"/api/orgs/acme/agents/{agent.pk}").status_code == 403
    assert api.post(f"/api/orgs/acme/agents/{agent.pk}/rotate-secret").status_code == 403
    agent.refresh_from_db()
    assert agent.revoked_at is None


def test_outsider_gets_404_on_every_agent_route(api, outsider, org_a):
    agent = AgentFactory(org=org_a)
    api.as_user(outsider)
    assert api.get("/api/orgs/acme/agents").status_code == 404
    assert api.get(f"/api/orgs/bravo/agents/{agent.pk}").status_code == 404
    assert api.delete(f"/api/orgs/bravo/agents/{agent.pk}").status_code == 404
    assert api.post(f"/api/orgs/bravo/agents/{agent.pk}/rotate-secret").status_code == 404
    secret = agent.secret
    agent.refresh_from_db()
    assert agent.revoked_at is None and agent.secret == secret


def test_bad_labels_are_a_400(api, admin_user):
    response = api.as_user(admin_user).post(
        "/api/orgs/acme/agents", {"name": "x", "labels": ["has space"]}, format="json"
    )
    assert response.status_code == 400
    assert not Agent.objects.exists()


def test_revoking_an_agent_locks_it_out_and_fails_its_running_jobs(
    api, owner, org_a, django_capture_on_commit_callbacks
):
    agent = AgentFactory(org=org_a)
    job = JobFactory(org=org_a, status=JobStatus.RUNNING, agent_id=agent.pk, claimed_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert api.as_user(owner).delete(f"/api/orgs/acme/agents/{agent.pk}").status_code == 204
    agent.refresh_from_db()
    job.refresh_from_db()
    assert agent.revoked_at is not None
    assert (job.status, job.error) == ("failed", "agent revoked")
    assert SignedAgent(agent).heartbeat().status_code == 401
    assert api.get(f"/api/orgs/acme/agents/{agent.pk}").json()["status"] == "revoked"
    assert api.post(f"/api/orgs/acme/agents/{agent.pk}/rotate-secret").status_code == 409


@pytest.mark.parametrize(
    ("silent_for", "expected"), [(timedelta(minutes=6), "failed"), (timedelta(seconds=30), "running")]
)
def test_reaper_fails_running_jobs_of_an_agent_silent_for_five_minutes(org_a, silent_for, expected, server_up_since):
    server_up_since(timedelta(hours=1))  # the web tier was up all along: the silence is the agent's
    now = timezone.now()
    agent = AgentFactory(org=org_a, last_seen_at=now - silent_for)
    job = JobFactory(org=org_a, status=JobStatus.RUNNING, agent_id=agent.pk, claimed_at=now - timedelta(minutes=10))
    agents_reap_lost.delay()
    job.refresh_from_db()
    assert job.status == expected
    if expected == "failed":
        assert job.error == "agent lost" and job.finished_at is not None
