"""The admin as an operator's console: each action goes through the API's service and writes the audit
entry naming the operator; rows cannot be edited; lists filter by org, status and age; secrets stay masked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from agents.models import Agent
from orgs.models import ApiToken, AuditEvent
from tests.factories import AgentFactory, JobFactory, TriggerFactory, UserFactory, make_token
from triggers.models import Job, Trigger


@pytest.fixture
def operator(db):
    return UserFactory(email="ops@deplite.test", is_staff=True, is_superuser=True)


@pytest.fixture
def console(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def run_action(console: Client, changelist: str, action: str, *objs, follow=True):
    return console.post(changelist, {"action": action, "_selected_action": [str(o.pk) for o in objs]}, follow=follow)


def audit(action: str, target) -> AuditEvent:
    return AuditEvent.objects.get(action=action, target_id=str(target.pk))


def test_revoke_token_goes_through_the_service_and_names_the_operator(console, org_a, operator):
    token, raw = make_token(org_a)
    response = run_action(console, "/admin/orgs/apitoken/", "revoke", token)
    assert response.status_code == 200
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    entry = audit("token.revoked", token)
    assert entry.org == org_a and entry.actor_label == "admin:ops@deplite.test" and entry.actor_id == str(operator.pk)
    assert raw not in response.content.decode()


def test_revoke_agent_fails_its_running_job_and_is_audited(console, org_a):
    agent = AgentFactory(org=org_a)
    job = JobFactory(org=org_a, status="running", agent_id=agent.pk, claimed_at=timezone.now())
    run_action(console, "/admin/agents/agent/", "revoke", agent)
    assert Agent.objects.get(pk=agent.pk).revoked_at is not None
    job.refresh_from_db()
    assert job.status == "failed" and job.error == "agent revoked"
    assert audit("agent.revoked", agent).actor_label == "admin:ops@deplite.test"


def test_disable_trigger_is_an_audited_update(console, org_a, api, org_token):
    trigger = TriggerFactory(org=org_a, enabled=True)
    run_action(console, "/admin/triggers/trigger/", "disable", trigger)
    assert Trigger.objects.get(pk=trigger.pk).enabled is False
    entry = audit("trigger.updated", trigger)
    assert entry.data == {"fields": ["enabled"]} and entry.actor_label == "admin:ops@deplite.test"
    # The run endpoint now refuses it, as the service says.
    run = api.as_token(org_token[1]).post(f"/triggers/{trigger.id}/run", {}, format="json")
    assert run.status_code == 409 and run.json()["error"]["code"] == "trigger_disabled"


def test_cancel_jobs_queued_and_running_and_a_finished_one_is_reported_not_changed(console, org_a):
    queued = JobFactory(org=org_a, status="queued")
    running = JobFactory(org=org_a, status="running", claimed_at=timezone.now())
    finished = JobFactory(org=org_a, status="succeeded", finished_at=timezone.now())
    response = run_action(console, "/admin/triggers/job/", "cancel", queued, running, finished)
    page = response.content.decode()
    assert Job.objects.get(pk=queued.pk).status == "cancelled"
    assert Job.objects.get(pk=running.pk).cancel_requested is True
    assert Job.objects.get(pk=finished.pk).status == "succeeded"
    assert audit("job.cancelled", queued).actor_label == "admin:ops@deplite.test"
    assert audit("job.cancel_requested", running).actor_label == "admin:ops@deplite.test"
    assert "done for 2" in page and "already finished as succeeded" in page


def test_rows_cannot_be_edited_through_the_admin(console, org_a):
    trigger = TriggerFactory(org=org_a, enabled=True, workflow="deploy")
    job = JobFactory(org=org_a, status="queued")
    console.post(f"/admin/triggers/trigger/{trigger.pk}/change/", {"workflow": "rm-rf", "enabled": ""})
    console.post(f"/admin/triggers/job/{job.pk}/change/", {"status": "succeeded"})
    trigger.refresh_from_db()
    job.refresh_from_db()
    assert (trigger.workflow, trigger.enabled, job.status) == ("deploy", True, "queued")
    assert console.get("/admin/triggers/trigger/add/").status_code == 403


def test_staff_without_the_change_permission_cannot_run_actions(db, org_a):
    viewer = UserFactory(email="viewer@deplite.test", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_job"))
    client = Client()
    client.force_login(viewer)
    job = JobFactory(org=org_a, status="queued")
    page = client.get("/admin/triggers/job/")
    assert page.status_code == 200 and 'value="cancel"' not in page.content.decode()
    run_action(client, "/admin/triggers/job/", "cancel", job)
    assert Job.objects.get(pk=job.pk).status == "queued"
    viewer.user_permissions.add(Permission.objects.get(codename="change_job"))
    run_action(client, "/admin/triggers/job/", "cancel", job)
    assert Job.objects.get(pk=job.pk).status == "cancelled"


def test_job_list_filters_by_org_status_and_age(console, org_a, org_b):
    old = JobFactory(org=org_a, status="queued")
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    fresh = JobFactory(org=org_a, status="queued")
    other_org = JobFactory(org=org_b, status="queued")
    failed = JobFactory(org=org_a, status="failed")

    def listed(query: str) -> set[str]:
        page = console.get(f"/admin/triggers/job/?{query}")
        assert page.status_code == 200
        return {j.short_id for j in (old, fresh, other_org, failed) if f">{j.short_id}<" in page.content.decode()}

    assert listed(f"org__id__exact={org_a.pk}&status__exact=queued") == {old.short_id, fresh.short_id}
    assert listed(f"org__id__exact={org_a.pk}&status__exact=queued&age=gt7d") == {old.short_id}
    assert listed("age=24h&status__exact=queued") == {fresh.short_id, other_org.short_id}


def test_agent_and_token_lists_filter_by_status_and_show_no_secret(console, org_a):
    online = AgentFactory(org=org_a, name="online-1", last_seen_at=timezone.now())
    AgentFactory(org=org_a, name="gone-1", last_seen_at=timezone.now() - timedelta(hours=2))
    page = console.get("/admin/agents/agent/?status=online").content.decode()
    assert "online-1" in page and "gone-1" not in page
    detail = console.get(f"/admin/agents/agent/{online.pk}/change/").content.decode()
    assert online.secret not in detail and "•••••••• (set)" in detail
    token, raw = make_token(org_a, name="ci-token")
    revoked, _ = make_token(org_a, name="old-token", revoked_at=timezone.now())
    page = console.get("/admin/orgs/apitoken/?status=active").content.decode()
    assert "ci-token" in page and "old-token" not in page
    assert raw not in console.get(f"/admin/orgs/apitoken/{token.pk}/change/").content.decode()


def test_remove_installation_goes_through_the_disconnect_service(console, org_a):
    from integrations.models import Installation

    installation = Installation.objects.create(
        org=org_a, provider="slack", external_id="T0OPS", name="Acme", bot_token="xoxb-secret-token"
    )
    page = console.get("/admin/integrations/installation/").content.decode()
    assert "xoxb-secret-token" not in page
    run_action(console, "/admin/integrations/installation/", "remove", installation)
    assert not Installation.objects.filter(pk=installation.pk).exists()
    entry = AuditEvent.objects.get(action="integration.removed", target_id=str(installation.pk))
    assert entry.actor_label == "admin:ops@deplite.test" and entry.data["externalId"] == "T0OPS"
