"""Where a trigger's jobs put their output files (issue 22): `outputBindingId` on the trigger API and
the trigger form, and `outputRetentionDays` on the binding API."""

from __future__ import annotations

import pytest

from triggers.models import Trigger

from ..factories import StorageBindingFactory, TriggerFactory

pytestmark = pytest.mark.django_db


def test_a_trigger_takes_a_binding_of_its_org_as_output_binding_and_can_clear_it(api, admin_user, org_a):
    binding = StorageBindingFactory(org=org_a)
    api.as_user(admin_user)
    created = api.post(
        "/api/orgs/acme/triggers",
        {"name": "report", "workflow": "report", "outputBindingId": str(binding.pk)},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["outputBindingId"] == str(binding.pk)
    trigger = Trigger.objects.get(pk=created.json()["id"])
    assert trigger.output_binding_id == binding.pk

    # A PATCH of another field keeps it; null clears it.
    assert api.patch(f"/api/orgs/acme/triggers/{trigger.pk}", {"enabled": False}, format="json").json()[
        "outputBindingId"
    ] == str(binding.pk)
    cleared = api.patch(f"/api/orgs/acme/triggers/{trigger.pk}", {"outputBindingId": None}, format="json")
    assert cleared.status_code == 200 and cleared.json()["outputBindingId"] is None
    trigger.refresh_from_db()
    assert trigger.output_binding_id is None


def test_another_orgs_binding_is_a_400_naming_the_field(api, admin_user, org_a, org_b):
    foreign = StorageBindingFactory(org=org_b)
    trigger = TriggerFactory(org=org_a)
    api.as_user(admin_user)
    for response in (
        api.post(
            "/api/orgs/acme/triggers", {"name": "r", "workflow": "r", "outputBindingId": str(foreign.pk)}, format="json"
        ),
        api.patch(f"/api/orgs/acme/triggers/{trigger.pk}", {"outputBindingId": str(foreign.pk)}, format="json"),
    ):
        assert response.status_code == 400, response.content
        assert "outputBindingId" in response.json()["error"]["details"]["fields"]
    trigger.refresh_from_db()
    assert trigger.output_binding_id is None
    assert not Trigger.objects.filter(name="r").exists()


def test_the_trigger_form_offers_the_orgs_bindings_as_output_binding(client, owner, org_a, org_b):
    mine = StorageBindingFactory(org=org_a, name="reports-bucket")
    StorageBindingFactory(org=org_b, name="not-ours")
    trigger = TriggerFactory(org=org_a, name="report", workflow="report")
    client.force_login(owner)
    page = client.get(f"/orgs/{org_a.slug}/triggers/{trigger.pk}/edit/")
    assert page.status_code == 200
    assert b"reports-bucket" in page.content and b"not-ours" not in page.content
    saved = client.post(
        f"/orgs/{org_a.slug}/triggers/{trigger.pk}/edit/",
        {
            "name": "report",
            "type": "webhook",
            "workflow": "report",
            "output_binding_id": str(mine.pk),
            "enabled": "on",
            "notify_on": "always",
        },
    )
    assert saved.status_code == 302, saved.content[:2000]
    trigger.refresh_from_db()
    assert trigger.output_binding_id == mine.pk


def test_a_binding_keeps_job_outputs_for_its_retention_days(api, owner, org_a):
    binding = StorageBindingFactory(org=org_a)
    api.as_user(owner)
    url = f"/api/orgs/acme/storage/bindings/{binding.pk}"
    assert api.get(url).json()["outputRetentionDays"] is None
    response = api.patch(url, {"outputRetentionDays": 30}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["outputRetentionDays"] == 30
    binding.refresh_from_db()
    assert binding.output_retention_days == 30
    assert api.patch(url, {"outputRetentionDays": 0}, format="json").status_code == 400
