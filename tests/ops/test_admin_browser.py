"""The operator's console in headless Chromium: log in to the admin, filter a list, run two actions."""

from __future__ import annotations

import pytest
from django.utils import timezone

from agents.models import Agent
from orgs.models import AuditEvent
from tests.browser import PASSWORD
from tests.factories import AgentFactory, JobFactory, UserFactory
from triggers.models import Job


@pytest.mark.django_db(transaction=True)
def test_an_operator_cancels_a_job_and_revokes_an_agent_from_the_admin(browser_page, org_a, org_b, tmp_path):
    page, base = browser_page
    UserFactory(email="ops@deplite.test", is_staff=True, is_superuser=True)
    job = JobFactory(org=org_a, status="queued")
    other = JobFactory(org=org_b, status="queued")
    agent = AgentFactory(org=org_a, name="web-1", last_seen_at=timezone.now())

    page.goto(f"{base}/admin/login/")
    page.fill("input[name=username]", "ops@deplite.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()

    # Jobs of one org that are queued: only that org's job is listed; select it and cancel.
    page.goto(f"{base}/admin/triggers/job/?org__id__exact={org_a.pk}&status__exact=queued")
    assert page.locator(f"text={job.short_id}").count() >= 1
    assert page.locator("#result_list tbody tr").count() == 1
    page.check("#result_list tbody input.action-select")
    page.select_option("select[name=action]", "cancel")
    page.click("button[name=index]")
    page.wait_for_load_state()
    assert "Cancel selected jobs: done for 1." in page.content()
    page.screenshot(path=str(tmp_path / "admin-jobs.png"), full_page=True)

    # Agents that are online: revoke one.
    page.goto(f"{base}/admin/agents/agent/?status=online")
    page.check("#result_list tbody input.action-select")
    page.select_option("select[name=action]", "revoke")
    page.click("button[name=index]")
    page.wait_for_load_state()
    assert "Revoke selected agents: done for 1." in page.content()
    assert agent.secret not in page.content()

    assert Job.objects.get(pk=job.pk).status == "cancelled"
    assert Job.objects.get(pk=other.pk).status == "queued"
    assert Agent.objects.get(pk=agent.pk).revoked_at is not None
    labels = set(
        AuditEvent.objects.filter(action__in=["job.cancelled", "agent.revoked"]).values_list("action", "actor_label")
    )
    assert labels == {("job.cancelled", "admin:ops@deplite.test"), ("agent.revoked", "admin:ops@deplite.test")}
