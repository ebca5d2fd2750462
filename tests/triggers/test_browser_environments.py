"""Environments in headless Chromium (issue #20): an admin creates `production` with one approval
and points a trigger at it; member A runs it; member B approves it on the job page and watches it
wait behind the deploy in progress, then run; B locks production and A's next run is refused with
the lock's reason; B unlocks and rolls back from the environment page."""

import uuid

import pytest

from orgs.actors import Actor
from orgs.models import Role
from tests.browser import log_in, screenshot
from triggers import services
from triggers.environments import services as env_services
from triggers.models import Environment, Job, JobSource, JobStatus, Trigger

from ..factories import MembershipFactory

AGENT = {"agent_id": uuid.uuid4(), "agent_name": "prod-1", "agent_labels": []}


def _log_out(page) -> None:
    page.click("header >> button:text-is('Log out')")
    page.wait_for_load_state()


def _start(org, job: Job) -> Job:
    """The agent takes the job and reports it started."""
    claimed = services.job_claim_next(org_id=org.pk, **AGENT)
    assert claimed is not None and claimed.pk == job.pk
    services.job_record_events(job=claimed, events=[{"seq": 1, "type": "job_started", "timeoutMinutes": 5}])
    return claimed


@pytest.mark.django_db(transaction=True)
def test_approve_wait_run_lock_unlock_and_roll_back(browser_page, admin_user, owner, org_a):
    page, base = browser_page
    ana = MembershipFactory(org=org_a, role=Role.MEMBER, user__email="ana@acme.test").user
    bea = MembershipFactory(org=org_a, role=Role.MEMBER, user__email="bea@acme.test").user

    # The admin creates production (one approval, by any member) and points a trigger at it.
    log_in(page, base, "admin@acme.test", then="/orgs/acme/")
    page.click("nav.org >> text=Environments")
    page.click("summary:text-is('New environment')")
    page.fill("input[name=name]", "production")
    page.fill("input[name=required_approvals]", "1")
    page.select_option("select[name=approver_role]", "member")
    page.click("text=Create environment")
    page.wait_for_selector("text=Environment production created.")
    environment = Environment.objects.get(org=org_a, name="production")
    assert (environment.required_approvals, environment.approver_role) == (1, "member")
    page.goto(f"{base}/orgs/acme/triggers/new/")
    page.fill("input[name=name]", "deploy-prod")
    page.fill("input[name=workflow]", "deploy")
    page.select_option("select[name=environment]", "production")
    page.click("text=Create trigger")
    page.wait_for_selector("text=Trigger deploy-prod created.")
    trigger = Trigger.objects.get(name="deploy-prod")
    assert trigger.environment_id == environment.pk
    _log_out(page)

    # A deploy already in progress (the owner's, approved by the admin) holds production.
    first = services.trigger_run(
        trigger=trigger, actor=Actor.for_user(owner), source=JobSource.API, ref="v1.0.0", params={"V": "1"}
    )
    env_services.job_decide(job=Job.objects.get(pk=first.job_id), actor=Actor.for_user(admin_user), decision="approved")
    blocker = _start(org_a, Job.objects.get(pk=first.job_id))

    # Member A runs it: the job waits for an approval, and A may not give it.
    log_in(page, base, "ana@acme.test", then=f"/orgs/acme/triggers/{trigger.pk}/")
    page.fill("input[name=ref]", "main")
    page.click("text=Run deploy-prod")
    page.wait_for_selector("#messages >> text=waiting for approval")
    job = Job.objects.exclude(pk=blocker.pk).get()
    assert (job.status, job.requested_by_id) == (JobStatus.PENDING_APPROVAL, ana.pk)
    assert page.inner_text("[data-testid=job-status]") == "Pending approval"
    assert page.inner_text("[data-testid=job-environment]") == "production"
    assert page.locator("[data-testid=own-job]").count() == 1 and page.locator("[data-testid=decide]").count() == 0
    _log_out(page)

    # Member B approves on the job page: the job waits its turn behind the running deploy.
    log_in(page, base, "bea@acme.test", then=f"/orgs/acme/jobs/{job.pk}")
    page.fill("#decide-form input[name=comment]", "ship it")
    page.click("#decide-form button:text-is('Approve')")
    page.wait_for_selector(f"#messages >> text=You approved job #{job.short_id}.")
    assert page.inner_text("[data-testid=job-status]") == "Waiting"
    assert list(job.approvals.values_list("user_id", "comment")) == [(bea.pk, "ship it")]
    assert page.inner_text("[data-testid=waiting-reason]").startswith(f"behind #{blocker.short_id} (running for")
    assert "Approved by bea@acme.test" in page.inner_text("[data-testid=job-approvals]")
    assert "ship it" in page.inner_text("[data-testid=job-approvals]")
    screenshot(page, "environment-job-waiting")

    # The deploy ahead finishes: the page follows the job to queued, then running, then succeeded.
    services.job_finish(job=blocker, status=JobStatus.SUCCEEDED, exit_code=0, error=None)
    page.wait_for_selector("[data-testid=job-status]:text-is('Queued')")
    assert page.locator("[data-testid=waiting-reason]").count() == 0
    running = _start(org_a, job)
    page.wait_for_selector("[data-testid=job-status]:text-is('Running')")
    services.job_finish(job=running, status=JobStatus.SUCCEEDED, exit_code=0, error=None)
    page.wait_for_selector("[data-testid=job-status]:text-is('Succeeded')")

    # B locks production from its page.
    page.click("[data-testid=job-environment] >> a")
    assert job.short_id in page.inner_text("[data-testid=current-deployment]")
    page.click("summary:text-is('Lock…')")
    page.fill("input[name=reason]", "release freeze")
    page.click("button:text-is('Lock production')")
    page.wait_for_selector("[data-testid=lock-badge]")
    assert "release freeze" in page.inner_text("[data-testid=lock]")
    screenshot(page, "environment-locked")
    _log_out(page)

    # A's next run is refused with the lock's reason, and no job is made.
    log_in(page, base, "ana@acme.test", then=f"/orgs/acme/triggers/{trigger.pk}/")
    page.fill("input[name=ref]", "main")
    page.click("text=Run deploy-prod")
    page.wait_for_selector("[data-testid=form-errors]")
    assert "is locked by bea@acme.test: 'release freeze'" in page.inner_text("[data-testid=form-errors]")
    assert Job.objects.count() == 2
    _log_out(page)

    # B unlocks, then rolls back from the environment page (after confirming in its <details>).
    log_in(page, base, "bea@acme.test", then="/orgs/acme/environments/production/")
    page.click("button:text-is('Unlock production')")
    page.wait_for_selector("text=production unlocked.")
    assert page.locator("[data-testid=lock-badge]").count() == 0
    page.click("summary:text-is('Roll back…')")
    page.click("button:text-is('Yes, roll back production')")
    page.wait_for_selector("#messages >> text=a rollback of production")
    rollback = Job.objects.exclude(pk__in=[blocker.pk, job.pk]).get()
    assert (rollback.ref, rollback.params, rollback.rollback_of_id) == ("v1.0.0", {"V": "1"}, job.pk)
    assert page.inner_text("[data-testid=rollback-of]") == f"#{job.short_id}"
    # The rules still apply: the rollback waits for its approval like any deploy.
    assert page.inner_text("[data-testid=job-status]") == "Pending approval"
    screenshot(page, "environment-rollback")
