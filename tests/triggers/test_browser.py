"""Triggers and jobs in headless Chromium: create a trigger, run it, watch the job page
follow the agent's log without a reload, cancel it."""

import uuid

import pytest

from tests.browser import log_in
from triggers import services
from triggers.models import Job, JobSource, JobStatus, Trigger


@pytest.mark.django_db(transaction=True)
def test_admin_creates_a_trigger_runs_it_and_watches_the_job(browser_page, admin_user, org_a, tmp_path):
    page, base = browser_page
    log_in(page, base, "admin@acme.test", then="/orgs/acme/")
    page.click("nav.org >> text=Triggers")
    page.click("text=New trigger")
    page.fill("input[name=name]", "deploy-prod")
    page.fill("input[name=workflow]", "deploy")
    page.fill("input[name=agent_labels]", "prod")
    page.select_option("select[name=notify_provider]", "slack")
    page.fill("input[name=notify_team_id]", "T0123")
    page.fill("input[name=notify_channel_id]", "C0456")
    page.select_option("select[name=notify_on]", "failure")
    page.click("text=Create trigger")
    page.wait_for_selector("text=Trigger deploy-prod created.")
    trigger = Trigger.objects.get(name="deploy-prod")
    assert (trigger.agent_labels, trigger.notify_on) == (["prod"], "failure")
    assert "/triggers/${{ secrets.DEPLITE_TRIGGER_ID }}/run" in page.locator("[data-testid=gha-snippet]").inner_text()
    assert f"DEPLITE_TRIGGER_ID = {trigger.pk}" in page.inner_text("main")

    page.fill("input[name=ref]", "v1.2.3")
    page.fill("textarea[name=params]", "ENV=production")
    page.click("text=Run deploy-prod")
    page.wait_for_selector("text=queued.")
    job = Job.objects.get()
    assert page.url == f"{base}/orgs/acme/jobs/{job.pk}"
    assert (job.source, job.ref, job.params) == (JobSource.UI, "v1.2.3", {"ENV": "production"})
    assert page.locator("[data-testid=job-status]").inner_text() == "Queued"

    # An agent takes the job and reports; the open page follows without a reload.
    claimed = services.job_claim_next(org_id=org_a.pk, agent_id=uuid.uuid4(), agent_name="web-1", agent_labels=["prod"])
    assert claimed.pk == job.pk
    services.job_record_events(
        job=claimed,
        events=[
            {"seq": 1, "type": "job_started", "timeoutMinutes": 5},
            {"seq": 2, "type": "step_started", "step": 1, "name": "Build"},
            {"seq": 3, "type": "log", "step": 1, "data": "building v1.2.3\n"},
        ],
    )
    # Selector waits, not wait_for_function: the pages' Content-Security-Policy refuses the eval it uses.
    page.wait_for_selector("[data-testid=job-log]:has-text('building v1.2.3')")
    assert page.locator("[data-testid=job-status]").inner_text() == "Running"
    assert "Build" in page.locator("#step-head-1").inner_text()
    services.job_record_events(job=claimed, events=[{"seq": 4, "type": "log", "step": 1, "data": "pushed\n"}])
    page.wait_for_selector("[data-testid=job-log]:has-text('pushed')")
    assert page.locator("[data-testid=job-log]").inner_text().count("building v1.2.3") == 1

    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.click("text=Cancel job")
    page.wait_for_selector("text=Cancel requested")
    assert dialogs == [f"Cancel job #{job.short_id} (deploy-prod)? The agent stops it at its next report."]
    job.refresh_from_db()
    assert job.cancel_requested and job.status == JobStatus.RUNNING
    services.job_finish(job=job, status=JobStatus.CANCELLED, exit_code=None, error=None)
    page.wait_for_selector("[data-testid=job-status]:text-is('Cancelled')")
    page.screenshot(path=str(tmp_path / "job.png"), full_page=True)
    # Done: the poller is gone, and so is the Cancel button.
    page.wait_for_selector("#job-poller[hx-get]", state="detached")
    assert page.locator("text=Cancel job").count() == 0
