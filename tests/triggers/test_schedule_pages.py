"""The trigger page's schedules: the list with its plain reading and fire times, and the forms
(add, edit, enable/disable, delete) with the API's own validation; managing needs triggers.manage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from orgs.models import AuditEvent
from triggers.models import Job, Schedule

from ..factories import ScheduleFactory, TriggerFactory

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(org, trigger) -> str:
    return f"/orgs/{org.slug}/triggers/{trigger.pk}/"


def test_the_trigger_page_lists_schedules_with_reading_fire_times_and_last_job(owner, org_a):
    schedule = ScheduleFactory(org=org_a, cron="0 9 * * 1-5", timezone="Europe/Berlin")
    job = Job.objects.create(
        org=org_a, trigger=schedule.trigger, trigger_name="x", workflow="deploy", source="schedule"
    )
    Schedule.objects.filter(pk=schedule.pk).update(last_fire_at=datetime(2026, 12, 7, 8, tzinfo=UTC), last_job=job)
    html = _client(owner).get(_page(org_a, schedule.trigger)).content.decode()
    assert "At 09:00 on Monday through Friday, Europe/Berlin" in html
    assert html.count("data-local-time") == 6  # five next fires and the last one
    assert f"#{job.short_id}" in html
    assert f"/schedules/{schedule.pk}/edit" in html


def test_a_member_sees_schedules_but_no_forms(member, org_a):
    schedule = ScheduleFactory(org=org_a)
    client = _client(member)
    html = client.get(_page(org_a, schedule.trigger)).content.decode()
    assert 'data-testid="schedule"' in html and "/schedules/new" not in html
    assert client.get(f"/orgs/{org_a.slug}/triggers/{schedule.trigger_id}/schedules/new").status_code == 403
    url = f"/orgs/{org_a.slug}/triggers/{schedule.trigger_id}/schedules/{schedule.pk}/delete"
    assert client.post(url).status_code == 403
    assert Schedule.objects.filter(pk=schedule.pk).exists()


def test_the_add_form_creates_a_schedule_and_names_a_bad_field(owner, org_a):
    trigger = TriggerFactory(org=org_a)
    client = _client(owner)
    url = f"/orgs/{org_a.slug}/triggers/{trigger.pk}/schedules/new"
    bad = client.post(url, {"cron": "0 25 * * *", "timezone": "Europe/Berlin", "catch_up": "latest"})
    assert bad.status_code == 400
    assert 'data-field-error="cron"' in bad.content.decode() and "Bad hour" in bad.content.decode()
    bad = client.post(url, {"cron": "0 9 * * *", "timezone": "Berlin", "catch_up": "latest"})
    assert 'data-field-error="timezone"' in bad.content.decode()
    assert not Schedule.objects.exists()

    response = client.post(
        url,
        {
            "cron": "30 6 * * *",
            "timezone": "Europe/Berlin",
            "params": "ENV=staging",
            "catch_up": "none",
            "enabled": "on",
        },
    )
    assert response.status_code == 302 and response["Location"].endswith("#schedules")
    schedule = Schedule.objects.get()
    assert (schedule.cron, schedule.timezone, schedule.params, schedule.catch_up) == (
        "30 6 * * *",
        "Europe/Berlin",
        {"ENV": "staging"},
        "none",
    )
    assert schedule.created_by == owner and schedule.next_fire_at is not None


def test_edit_toggle_and_delete(owner, org_a):
    schedule = ScheduleFactory(org=org_a, cron="0 9 * * *")
    client = _client(owner)
    base = f"/orgs/{org_a.slug}/triggers/{schedule.trigger_id}/schedules/{schedule.pk}"
    assert 'value="0 9 * * *"' in client.get(f"{base}/edit").content.decode()
    response = client.post(
        f"{base}/edit", {"cron": "15 9 * * *", "timezone": "UTC", "catch_up": "latest", "enabled": "on"}
    )
    assert response.status_code == 302
    assert Schedule.objects.get(pk=schedule.pk).cron == "15 9 * * *"

    client.post(f"{base}/toggle")
    assert Schedule.objects.get(pk=schedule.pk).enabled is False
    assert "none while disabled" in client.get(f"/orgs/{org_a.slug}/triggers/{schedule.trigger_id}/").content.decode()
    client.post(f"{base}/toggle")
    assert Schedule.objects.get(pk=schedule.pk).enabled is True

    client.post(f"{base}/delete")
    assert not Schedule.objects.filter(pk=schedule.pk).exists()
    actions = set(AuditEvent.objects.filter(target_id=str(schedule.pk)).values_list("action", flat=True))
    assert actions == {"schedule.updated", "schedule.deleted"}


def test_another_orgs_schedule_pages_are_404(owner, org_a, org_b):
    theirs = ScheduleFactory(org=org_b)
    client = _client(owner)
    base = f"/orgs/{org_a.slug}/triggers/{theirs.trigger_id}/schedules/{theirs.pk}"
    assert client.get(f"{base}/edit").status_code == 404
    assert client.post(f"{base}/delete").status_code == 404
    assert client.get(f"/orgs/{org_b.slug}/triggers/{theirs.trigger_id}/schedules/new").status_code == 404
    assert Schedule.objects.filter(pk=theirs.pk).exists()


def test_the_trigger_page_costs_the_same_queries_with_one_schedule_or_five(owner, org_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    trigger = TriggerFactory(org=org_a)
    client = _client(owner)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(_page(org_a, trigger)).status_code == 200
        return len(captured)

    ScheduleFactory(org=org_a, trigger=trigger, created_by=owner)
    one = queries()
    for _ in range(4):
        schedule = ScheduleFactory(org=org_a, trigger=trigger, created_by=owner)
        job = Job.objects.create(org=org_a, trigger=trigger, trigger_name="x", workflow="deploy", source="schedule")
        Schedule.objects.filter(pk=schedule.pk).update(last_job=job, last_fire_at=datetime(2026, 12, 7, tzinfo=UTC))
    assert queries() == one
