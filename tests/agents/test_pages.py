"""Agent pages: list with status, create and rotate showing the secret once (PRG, encrypted
session stash) with the environment for `deplite-agent run`, revoke."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from agents.models import Agent
from orgs.models import AuditEvent
from triggers.models import JobStatus

from ..factories import AgentFactory, JobFactory


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_member_sees_agents_with_status_but_cannot_manage_them(member, org_a):
    online = AgentFactory(
        org=org_a,
        name="web-1",
        labels=["prod"],
        hostname="web-1.internal",
        version="0.3.1",
        last_seen_at=timezone.now(),
    )
    AgentFactory(org=org_a, name="web-2", last_seen_at=timezone.now() - timedelta(hours=2))
    AgentFactory(org=org_a, name="old", revoked_at=timezone.now())
    client = _client(member)
    html = client.get("/orgs/acme/agents/").content.decode()
    for text in ("web-1", "web-1.internal", "0.3.1", "prod", 'class="badge online"', 'class="badge offline"'):
        assert text in html, text
    assert 'class="badge revoked"' in html
    assert "New agent" not in html and "Rotate secret" not in html and online.secret not in html
    assert client.post("/orgs/acme/agents/", {"name": "sneaky"}).status_code == 403
    assert client.post(f"/orgs/acme/agents/{online.pk}/rotate").status_code == 403
    assert client.post(f"/orgs/acme/agents/{online.pk}/revoke").status_code == 403
    online.refresh_from_db()
    assert online.revoked_at is None and Agent.objects.count() == 3


def test_admin_creates_an_agent_and_sees_its_secret_once(admin_user, org_a, settings):
    settings.DEPLITE_PUBLIC_URL = "https://deplite.example"
    client = _client(admin_user)
    response = client.post("/orgs/acme/agents/", {"name": "web-1", "labels": "prod linux,prod"}, follow=True)
    assert response.redirect_chain == [("/orgs/acme/agents/", 302)]  # a reload cannot mint another
    agent = Agent.objects.get()
    assert agent.labels == ["linux", "prod"]
    shown = response.context["shown"]
    assert shown["agent"] == agent and shown["secret"] == agent.secret
    html = response.content.decode()
    assert (
        "export DEPLITE_URL=https://deplite.example\n"
        f"export DEPLITE_AGENT_ID={agent.pk}\n"
        f"export DEPLITE_AGENT_SECRET={agent.secret}\n"
        "deplite-agent run"
    ) in html
    assert agent.secret not in client.get("/orgs/acme/agents/").content.decode()
    assert AuditEvent.objects.filter(action="agent.created").count() == 1


def test_the_secret_waits_in_the_session_encrypted(admin_user, org_a):
    client = _client(admin_user)
    client.post("/orgs/acme/agents/", {"name": "web-1"})
    secret = Agent.objects.get().secret
    stored = "".join(s.session_data for s in Session.objects.all())
    decoded = repr([s.get_decoded() for s in Session.objects.all()])
    assert secret not in stored and secret not in decoded
    assert "deplite.agent_secret" in decoded


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": ""}, "name", "may not be blank"),
        ({"name": "x" * 101}, "name", "no more than 100 characters"),
        ({"name": "web", "labels": "ok bad!label"}, "labels", "item 2"),
    ],
)
def test_agent_form_rejects_bad_input_without_creating(admin_user, org_a, data, field, message):
    response = _client(admin_user).post("/orgs/acme/agents/", data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not Agent.objects.exists() and response.context["shown"] is None


def test_rotate_shows_the_new_secret_once_and_the_old_one_stops(admin_user, org_a):
    agent = AgentFactory(org=org_a, name="web-1")
    old = agent.secret
    client = _client(admin_user)
    response = client.post(f"/orgs/acme/agents/{agent.pk}/rotate", follow=True)
    agent.refresh_from_db()
    assert agent.secret != old
    html = response.content.decode()
    assert f"export DEPLITE_AGENT_SECRET={agent.secret}" in html and old not in html
    assert agent.secret not in client.get("/orgs/acme/agents/").content.decode()


def test_revoke_fails_the_agents_running_jobs_and_rotate_then_refuses(admin_user, org_a):
    agent = AgentFactory(org=org_a, name="web-1")
    job = JobFactory(org=org_a, status=JobStatus.RUNNING, agent_id=agent.pk)
    client = _client(admin_user)
    response = client.post(f"/orgs/acme/agents/{agent.pk}/revoke", follow=True)
    assert "Agent web-1 revoked" in response.content.decode()
    agent.refresh_from_db()
    job.refresh_from_db()
    assert agent.revoked_at is not None and job.status == JobStatus.FAILED and job.error == "agent revoked"
    secret = agent.secret
    refused = client.post(f"/orgs/acme/agents/{agent.pk}/rotate", follow=True).content.decode()
    assert "This agent is revoked." in refused
    agent.refresh_from_db()
    assert agent.secret == secret


def test_rotate_and_revoke_are_posts(admin_user, org_a):
    agent = AgentFactory(org=org_a)
    client = _client(admin_user)
    assert client.get(f"/orgs/acme/agents/{agent.pk}/rotate").status_code == 405
    assert client.get(f"/orgs/acme/agents/{agent.pk}/revoke").status_code == 405
    agent.refresh_from_db()
    assert agent.revoked_at is None
