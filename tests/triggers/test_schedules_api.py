"""`/api/orgs/<orgId>/triggers/<triggerId>/schedules`: CRUD, validation naming the field, roles and
tokens as for triggers, other orgs' triggers a 404, audit rows."""

from __future__ import annotations

import re

import pytest

from orgs.models import AuditEvent, TokenScope
from triggers.models import Schedule

from ..factories import ScheduleFactory, TriggerFactory, make_token

pytestmark = pytest.mark.django_db

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _url(org, trigger, schedule=None) -> str:
    base = f"/api/orgs/{org.slug}/triggers/{trigger.pk}/schedules"
    return f"{base}/{schedule.pk}" if schedule else base


def test_owner_creates_a_schedule_and_reads_its_next_fire_times(api, org_a, owner):
    trigger = TriggerFactory(org=org_a)
    response = api.as_user(owner).post(
        _url(org_a, trigger),
        {"cron": "0  9 * * 1-5", "timezone": "Europe/Berlin", "ref": "main", "params": {"TARGET": "staging"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["cron"] == "0 9 * * 1-5" and body["timezone"] == "Europe/Berlin"
    assert body["catchUp"] == "latest" and body["enabled"] is True and body["params"] == {"TARGET": "staging"}
    assert body["description"] == "At 09:00 on Monday through Friday, Europe/Berlin"
    assert len(body["nextFireTimes"]) == 5 and all(ISO_UTC.match(t) for t in body["nextFireTimes"])
    assert body["nextFireAt"] == body["nextFireTimes"][0]
    # 09:00 in Berlin is 07:00 or 08:00 UTC, depending on the season.
    assert all(t[11:16] in ("07:00", "08:00") for t in body["nextFireTimes"])
    assert body["lastFireAt"] is None and body["lastJob"] is None and body["createdBy"] == owner.email
    assert AuditEvent.objects.filter(org=org_a, action="schedule.created", target_id=body["id"]).exists()

    listed = api.get(_url(org_a, trigger)).json()
    assert [s["id"] for s in listed["results"]] == [body["id"]]


@pytest.mark.parametrize(
    "payload,field,words",
    [
        ({"cron": "61 * * * *"}, "cron", "Bad minute"),
        ({"cron": "* * * *"}, "cron", "five fields"),
        ({"cron": "0 0 0 * * *"}, "cron", "five fields"),
        ({"cron": "0 0 31 2 *"}, "cron", "day-of-month"),
        ({"cron": "@daily"}, "cron", "five fields"),
        ({"cron": 5}, "cron", ""),
        ({}, "cron", "required"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone", "IANA"),
        ({"cron": "0 9 * * *", "timezone": ""}, "timezone", ""),
        ({"cron": "0 9 * * *", "catchUp": "all"}, "catchUp", ""),
        ({"cron": "0 9 * * *", "params": {"bad-name": "x"}}, "params.bad-name", ""),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, org_a, owner, payload, field, words):
    trigger = TriggerFactory(org=org_a)
    response = api.as_user(owner).post(_url(org_a, trigger), payload, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]["fields"], error
    assert words in " ".join(error["details"]["fields"][field])
    assert not Schedule.objects.exists()


def test_patch_disables_and_changes_the_expression(api, org_a, owner):
    schedule = ScheduleFactory(org=org_a, cron="0 9 * * *")
    api.as_user(owner)
    response = api.patch(_url(org_a, schedule.trigger, schedule), {"enabled": False}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["nextFireTimes"] == [] and response.json()["nextFireAt"] is None
    response = api.patch(
        _url(org_a, schedule.trigger, schedule), {"enabled": True, "cron": "*/15 * * * *"}, format="json"
    )
    body = response.json()
    assert body["cron"] == "*/15 * * * *" and len(body["nextFireTimes"]) == 5
    assert all(t[14:16] in ("00", "15", "30", "45") for t in body["nextFireTimes"])
    assert api.patch(_url(org_a, schedule.trigger, schedule), {"timezone": "Nowhere"}, format="json").status_code == 400
    assert AuditEvent.objects.filter(action="schedule.updated", target_id=str(schedule.pk)).count() == 2


def test_delete_removes_the_schedule_and_keeps_an_audit_row(api, org_a, owner):
    schedule = ScheduleFactory(org=org_a)
    response = api.as_user(owner).delete(_url(org_a, schedule.trigger, schedule))
    assert response.status_code == 204
    assert not Schedule.objects.filter(pk=schedule.pk).exists()
    assert AuditEvent.objects.filter(action="schedule.deleted", target_id=str(schedule.pk)).exists()


def test_a_member_reads_schedules_but_may_not_change_them(api, org_a, member):
    schedule = ScheduleFactory(org=org_a)
    api.as_user(member)
    assert api.get(_url(org_a, schedule.trigger, schedule)).status_code == 200
    assert api.post(_url(org_a, schedule.trigger), {"cron": "0 9 * * *"}, format="json").status_code == 403
    assert api.patch(_url(org_a, schedule.trigger, schedule), {"enabled": False}, format="json").status_code == 403
    assert api.delete(_url(org_a, schedule.trigger, schedule)).status_code == 403
    assert Schedule.objects.get(pk=schedule.pk).enabled


def test_a_trigger_token_is_refused_as_for_triggers(api, org_a):
    """A trigger token runs triggers and reads jobs; it reads no trigger, so no schedule either."""
    schedule = ScheduleFactory(org=org_a)
    _, raw = make_token(org_a, scope_type=TokenScope.TRIGGER, trigger_ids=[str(schedule.trigger_id)])
    api.as_token(raw)
    assert api.get(f"/api/orgs/{org_a.slug}/triggers/{schedule.trigger_id}").status_code == 403
    assert api.get(_url(org_a, schedule.trigger)).status_code == 403
    assert api.post(_url(org_a, schedule.trigger), {"cron": "0 9 * * *"}, format="json").status_code == 403


def test_another_orgs_trigger_and_schedule_are_404(api, org_a, org_b, owner):
    theirs = ScheduleFactory(org=org_b)
    mine = TriggerFactory(org=org_a)
    api.as_user(owner)
    # Their trigger through my org's URL, and their schedule under my trigger.
    assert api.get(_url(org_a, theirs.trigger)).status_code == 404
    assert api.post(_url(org_a, theirs.trigger), {"cron": "0 9 * * *"}, format="json").status_code == 404
    assert api.get(_url(org_a, mine, theirs)).status_code == 404
    assert api.patch(_url(org_a, mine, theirs), {"enabled": False}, format="json").status_code == 404
    assert api.delete(_url(org_a, mine, theirs)).status_code == 404
    assert api.get(f"/api/orgs/{org_a.slug}/triggers/not-a-uuid/schedules").status_code == 404
    assert Schedule.objects.get(pk=theirs.pk).enabled


def test_a_schedule_is_only_found_under_its_own_trigger(api, org_a, owner):
    schedule = ScheduleFactory(org=org_a)
    other = TriggerFactory(org=org_a)
    assert api.as_user(owner).get(_url(org_a, other, schedule)).status_code == 404


def test_the_schedules_are_in_the_schema(api, owner):
    schema = api.as_user(owner).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert "/api/orgs/{org_id}/triggers/{trigger_id}/schedules/" in paths
    detail = paths["/api/orgs/{org_id}/triggers/{trigger_id}/schedules/{id}/"]
    assert set(detail) >= {"get", "patch", "delete"}
    output = schema["components"]["schemas"]["ScheduleOutput"]["properties"]
    assert {"nextFireTimes", "description", "lastFireAt", "lastJob", "catchUp"} <= set(output)


def test_the_list_costs_the_same_queries_with_one_schedule_or_ten(api, org_a, owner):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from triggers.models import Job

    trigger = TriggerFactory(org=org_a)
    api.as_user(owner)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(_url(org_a, trigger)).status_code == 200
        return len(captured)

    ScheduleFactory(org=org_a, trigger=trigger, created_by=owner)
    one = queries()
    for _ in range(9):
        job = Job.objects.create(org=org_a, trigger=trigger, trigger_name="x", workflow="deploy", source="schedule")
        ScheduleFactory(org=org_a, trigger=trigger, created_by=owner, last_job=job)
    assert queries() == one
