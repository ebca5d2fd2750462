"""The jobs list in headless Chromium: a job run after the page opened shows up and moves on
without a reload, its error inline; search by ref and params; who asked; a commit SHA
shortened and linked to the trigger's repository."""

import uuid

import pytest

from orgs.actors import Actor
from tests.browser import log_in, screenshot, wait_for_js
from triggers import services
from triggers.models import JobSource, JobStatus

from ..factories import TriggerFactory

SHA = "3f2c1a9b8e7d6c5b4a3928170f6e5d4c3b2a1908"


@pytest.mark.django_db(transaction=True)
def test_jobs_list_follows_new_jobs_and_searches(browser_page, member, org_a):
    page, base = browser_page
    trigger = TriggerFactory(org=org_a, name="web", repository_url="https://github.com/acme/web")
    ci = Actor(kind="token", id="t1", label="github-ci")
    services.trigger_run(
        trigger=trigger, actor=ci, source=JobSource.WEBHOOK, ref=SHA, params={"actor": "octocat", "ENV": "production"}
    )
    log_in(page, base, "member@acme.test", then="/orgs/acme/jobs/")
    first = page.locator("#job-rows tr").first
    assert first.locator("[data-testid=row-who]").inner_text() == "Webhook · github-ci · GitHub: octocat"
    link = first.locator(f"a[href='https://github.com/acme/web/commit/{SHA}']")
    assert link.inner_text() == SHA[:7]

    # A job queued after the page opened appears, then fails with its error inline, no reload.
    page.evaluate("window.notReloaded = true")
    me = Actor(kind="user", id="u", label="member@acme.test")
    run = services.trigger_run(trigger=trigger, actor=me, source=JobSource.UI, ref="v2.0.0", params={"ENV": "staging"})
    row = page.locator(f"tr[data-job='{run.body['shortId']}']")
    row.wait_for()
    assert row.locator("[data-testid=row-who]").inner_text() == "Web UI · member@acme.test"
    claimed = services.job_claim_next(org_id=org_a.pk, agent_id=uuid.uuid4(), agent_name="a", agent_labels=[])
    services.job_finish(job=claimed, status=JobStatus.FAILED, exit_code=2, error='step "migrate" exited with code 2')
    wait_for_js(
        page,
        f"document.querySelector(\"tr[data-job='{claimed.short_id}'] [data-testid=row-status]\").textContent === 'Failed'",
    )
    assert page.evaluate("window.notReloaded") is True
    failed_row = page.locator(f"tr[data-job='{claimed.short_id}']")
    assert failed_row.locator("[data-testid=row-error]").inner_text() == 'step "migrate" exited with code 2'
    screenshot(page, "jobs-list")

    page.fill("#f-q", "ENV=staging")
    page.click("text=Filter")
    page.wait_for_url("**q=ENV%3Dstaging**")
    assert page.locator("#job-rows tr[data-job]").count() == 1
    assert page.locator(f"tr[data-job='{run.body['shortId']}']").count() == 1
    page.fill("#f-q", "3f2c1a")
    page.click("text=Filter")
    page.wait_for_url("**q=3f2c1a**")
    assert page.locator("#job-rows tr[data-job]").count() == 1
    assert page.locator(f"a[href$='{SHA}']").count() == 1
