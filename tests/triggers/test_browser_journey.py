"""The job journey in headless Chromium: a trigger left with the default ref runs `main`, a
flash message goes once the job moved on, cancel asks first and records who, and Re-run
repeats a job with its params editable first."""

import uuid

import pytest

from tests.browser import log_in, screenshot, wait_for_js
from triggers import services
from triggers.models import Job, JobStatus, Trigger


@pytest.mark.django_db(transaction=True)
def test_run_watch_cancel_with_confirmation_and_rerun(browser_page, admin_user, org_a):
    page, base = browser_page
    log_in(page, base, "admin@acme.test", then="/orgs/acme/triggers/new/")
    page.fill("input[name=name]", "deploy-web")
    page.fill("input[name=workflow]", "deploy")
    assert page.get_attribute("input[name=default_ref]", "placeholder") == "main"
    page.click("text=Create trigger")
    page.wait_for_selector("text=Trigger deploy-web created.")
    trigger = Trigger.objects.get(name="deploy-web")
    assert trigger.default_ref == "main"  # left empty, it saves what it showed

    page.fill("textarea[name=params]", "ENV=production\nVERSION=1.2.3")
    page.click("text=Run deploy-web")
    page.wait_for_selector("#messages >> text=queued.")
    job = Job.objects.get()
    assert job.ref == "main"

    # The agent takes it: "queued." no longer describes the job, so the message goes without a reload.
    claimed = services.job_claim_next(org_id=org_a.pk, agent_id=uuid.uuid4(), agent_name="web-1", agent_labels=[])
    services.job_record_events(job=claimed, events=[{"seq": 1, "type": "job_started", "timeoutMinutes": 5}])
    wait_for_js(page, "document.querySelector('[data-testid=job-status]').textContent === 'Running'")
    page.wait_for_selector("text=queued.", state="detached")

    # Cancel asks first: dismissed, nothing happens.
    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.click("text=Cancel job")
    page.wait_for_timeout(300)
    job.refresh_from_db()
    assert dialogs and not job.cancel_requested and page.url == f"{base}/orgs/acme/jobs/{job.pk}"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Cancel job")
    page.wait_for_selector("text=cancel requested by admin@acme.test")
    services.job_finish(job=job, status=JobStatus.CANCELLED, exit_code=None, error=None)
    page.wait_for_selector("[data-testid=cancelled-by] >> text=admin@acme.test")
    page.wait_for_selector("text=Cancel requested:", state="detached")  # the flash went with its state
    job.refresh_from_db()
    assert (job.status, job.cancelled_by) == (JobStatus.CANCELLED, "admin@acme.test")
    screenshot(page, "job-cancelled")

    # Re-run, params edited first.
    page.click("text=Re-run…")
    assert page.input_value("#rerun-form textarea[name=params]") == "ENV=production\nVERSION=1.2.3"
    page.fill("#rerun-form textarea[name=params]", "ENV=production\nVERSION=1.2.4")
    page.click("#rerun-form button[type=submit]")
    page.wait_for_selector(f"text=a re-run of #{job.short_id}")
    rerun = Job.objects.exclude(pk=job.pk).get()
    assert page.url == f"{base}/orgs/acme/jobs/{rerun.pk}"
    assert (rerun.rerun_of_id, rerun.ref, rerun.params) == (job.pk, "main", {"ENV": "production", "VERSION": "1.2.4"})
    page.click(f"[data-testid=rerun-links] >> text=#{job.short_id}")
    page.wait_for_selector(f"[data-testid=rerun-links] >> text=#{rerun.short_id}")

    # A bad edit is refused on the form, nothing queued.
    page.click("text=Re-run…")
    page.fill("#rerun-form textarea[name=params]", "no equals sign")
    page.click("#rerun-form button[type=submit]")
    page.wait_for_selector("text=Line 1: write KEY=value.")
    assert Job.objects.count() == 2
