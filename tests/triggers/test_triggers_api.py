"""Trigger CRUD: validation per type, one keyword per chat channel, roles and isolation."""

from __future__ import annotations

import pytest

from orgs.models import AuditEvent
from triggers.models import Job, Trigger

from ..factories import JobFactory, TriggerFactory

SLACK = {
    "name": "deploy-prod",
    "type": "slack",
    "workflow": "deploy",
    "chatProvider": "slack",
    "chatTeamId": "T0123",
    "chatChannelId": "C0123",
    "chatKeyword": "deploy",
}


def test_admin_creates_a_webhook_trigger(api, admin_user):
    response = api.as_user(admin_user).post(
        "/api/orgs/acme/triggers",
        '{"name": "deploy-prod", "workflow": "deploy", "agentLabels": ["prod"]}',
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["type"] == "webhook" and body["enabled"] is True and body["defaultRef"] == "main"
    assert body["agentLabels"] == ["prod"] and body["notifyOn"] == "always"
    assert body["runUrl"].endswith(f"/triggers/{body['id']}/run")
    assert AuditEvent.objects.filter(action="trigger.created", target_id=body["id"]).exists()


def test_docs_slack_and_notify_fields_are_accepted(api, admin_user):
    body = {
        **SLACK,
        "notifyProvider": "slack",
        "notifyTeamId": "T0123",
        "notifyChannelId": "C0456",
        "notifyOn": "failure",
    }
    response = api.as_user(admin_user).post("/api/orgs/acme/triggers", body, format="json")
    assert response.status_code == 201, response.content
    trigger = Trigger.objects.get()
    assert (trigger.chat_team_id, trigger.chat_channel_id, trigger.chat_keyword) == ("T0123", "C0123", "deploy")
    assert (trigger.notify_channel_id, trigger.notify_on) == ("C0456", "failure")


@pytest.mark.parametrize("missing", ["chatTeamId", "chatChannelId", "chatKeyword"])
def test_slack_trigger_needs_team_channel_and_keyword(api, admin_user, missing):
    body = {k: v for k, v in SLACK.items() if k != missing}
    response = api.as_user(admin_user).post("/api/orgs/acme/triggers", body, format="json")
    assert response.status_code == 400
    assert missing in response.json()["error"]["details"]["fields"]


def test_one_keyword_per_team_and_channel(api, admin_user):
    api.as_user(admin_user)
    assert api.post("/api/orgs/acme/triggers", SLACK, format="json").status_code == 201
    again = api.post("/api/orgs/acme/triggers", {**SLACK, "name": "other", "chatKeyword": "DEPLOY"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "chat_keyword_taken"
    first = api.get("/api/orgs/acme/triggers").json()["results"][0]
    assert (
        again.json()["error"]["message"]
        == f'Trigger "{first["name"]}" already uses the keyword "deploy" in this chat channel.'
    )
    assert again.json()["error"]["details"]["triggerId"] == first["id"]
    assert list(again.json()["error"]["details"]["fields"]) == ["chatKeyword"]
    elsewhere = api.post("/api/orgs/acme/triggers", {**SLACK, "name": "o2", "chatChannelId": "C9"}, format="json")
    assert elsewhere.status_code == 201
    assert sorted(Trigger.objects.values_list("name", flat=True)) == sorted([SLACK["name"], "o2"])


@pytest.mark.parametrize(
    "patch",
    [
        {"workflow": "../../etc/passwd"},
        {"workflow": "deploy/prod"},
        {"type": "telegram"},
        {"notifyOn": "sometimes"},
        {"notifyProvider": "slack"},
        {"chatKeyword": "deploy"},
        {"agentLabels": "prod"},
    ],
)
def test_invalid_fields_are_a_400(api, admin_user, patch):
    body = {"name": "x", "workflow": "deploy", **patch}
    response = api.as_user(admin_user).post("/api/orgs/acme/triggers", body, format="json")
    assert response.status_code == 400, response.content
    assert Trigger.objects.count() == 0


def test_patch_merges_with_the_stored_trigger_and_revalidates(api, admin_user, org_a):
    trigger = TriggerFactory(org=org_a, name="old", workflow="deploy")
    api.as_user(admin_user)
    response = api.patch(f"/api/orgs/acme/triggers/{trigger.pk}", {"enabled": False}, format="json")
    assert response.status_code == 200 and response.json()["enabled"] is False and response.json()["name"] == "old"
    assert api.patch(f"/api/orgs/acme/triggers/{trigger.pk}", {"type": "slack"}, format="json").status_code == 400
    trigger.refresh_from_db()
    assert trigger.type == "webhook" and trigger.enabled is False


def test_deleting_a_trigger_keeps_its_jobs(api, admin_user, org_a):
    trigger = TriggerFactory(org=org_a, name="deploy-prod")
    job = JobFactory(org=org_a, trigger=trigger)
    assert api.as_user(admin_user).delete(f"/api/orgs/acme/triggers/{trigger.pk}").status_code == 204
    job.refresh_from_db()
    assert job.trigger_id is None and job.trigger_name == "deploy-prod"
    assert Job.objects.count() == 1


def test_member_reads_but_cannot_manage(api, member, org_a):
    trigger = TriggerFactory(org=org_a)
    api.as_user(member)
    assert api.get("/api/orgs/acme/triggers").json()["count"] == 1
    assert api.post("/api/orgs/acme/triggers", {"name": "x", "workflow": "w"}, format="json").status_code == 403
    assert api.patch(f"/api/orgs/acme/triggers/{trigger.pk}", {"enabled": False}, format="json").status_code == 403
    assert api.delete(f"/api/orgs/acme/triggers/{trigger.pk}").status_code == 403


def test_outsider_gets_404(api, outsider, org_a):
    trigger = TriggerFactory(org=org_a)
    api.as_user(outsider)
    assert api.get("/api/orgs/acme/triggers").status_code == 404
    assert api.get(f"/api/orgs/bravo/triggers/{trigger.pk}").status_code == 404
    assert api.patch(f"/api/orgs/bravo/triggers/{trigger.pk}", {"enabled": False}, format="json").status_code == 404
    assert api.delete(f"/api/orgs/bravo/triggers/{trigger.pk}").status_code == 404
    assert Trigger.objects.filter(pk=trigger.pk, enabled=True).exists()


def test_a_keyword_clash_with_another_orgs_trigger_does_not_name_it(api, admin_user, outsider):
    api.as_user(outsider)
    assert api.post("/api/orgs/bravo/triggers", {**SLACK, "name": "secret-name"}, format="json").status_code == 201
    clash = api.as_user(admin_user).post("/api/orgs/acme/triggers", SLACK, format="json")
    assert clash.status_code == 409
    error = clash.json()["error"]
    assert "secret-name" not in str(error) and "triggerId" not in error["details"]
