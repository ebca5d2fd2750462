"""axe-core over every page an admin reaches after logging in, each with rows in its tables
(so action columns render), in headless Chromium under the pages' Content-Security-Policy;
and the shared browser fixture's own check: it sees what axe sees."""

from __future__ import annotations

import pytest
from django.utils import timezone

from orgs.actors import Actor
from tests.browser import FAILING_IMPACTS, log_in
from tests.factories import (
    AgentFactory,
    InstallationFactory,
    JobFactory,
    OutboxMessageFactory,
    StorageBindingFactory,
    StoredFileFactory,
    TriggerFactory,
)
from triggers.environments import services as env_services
from triggers.models import JobStatus


@pytest.mark.django_db(transaction=True)
def test_every_page_after_login_has_no_serious_violation_and_no_empty_table_header(
    browser_page, accessibility_check, admin_user, org_a, settings
):
    settings.SLACK_CLIENT_ID, settings.SLACK_CLIENT_SECRET, settings.SLACK_SIGNING_SECRET = "1.2", "s", "sig"
    InstallationFactory(org=org_a, external_id="T0123", name="Acme Slack")
    AgentFactory(org=org_a, name="web-1", labels=["prod"])
    binding = StorageBindingFactory(org=org_a, name="artifacts")
    StoredFileFactory(org=org_a, binding=binding)
    trigger = TriggerFactory(org=org_a, name="deploy-prod")
    job = JobFactory(org=org_a, trigger=trigger)
    OutboxMessageFactory(org=org_a, job=job)
    # An environment with a lock, a deployment and a job waiting for approval (the admin may decide).
    environment = env_services.environment_create(
        org=org_a, actor=Actor.for_user(admin_user), name="production", required_approvals=1
    )
    env_services.environment_lock(environment=environment, actor=Actor.for_user(admin_user), reason="freeze")
    deploys = TriggerFactory(org=org_a, name="deploy-env", environment=environment)
    env_job = {"org": org_a, "trigger": deploys, "environment": environment, "environment_name": "production"}
    JobFactory(**env_job, status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    pending = JobFactory(**env_job, status=JobStatus.PENDING_APPROVAL)
    page, base = browser_page
    log_in(page, base, "admin@acme.test", then="/")
    paths = [
        "/orgs/acme/",
        "/orgs/acme/jobs/",
        f"/orgs/acme/jobs/{job.pk}",
        "/orgs/acme/triggers/",
        f"/orgs/acme/triggers/{trigger.pk}/",
        "/orgs/acme/triggers/new/",
        "/orgs/acme/environments/",
        "/orgs/acme/environments/production/",
        f"/orgs/acme/jobs/{pending.pk}",
        "/orgs/acme/agents/",
        "/orgs/acme/storage/",
        "/orgs/acme/storage/files/",
        "/orgs/acme/storage/new/",
        "/orgs/acme/members/",
        "/orgs/acme/tokens/",
        "/orgs/acme/integrations/",
        "/orgs/acme/audit/",
    ]
    for path in paths:
        page.goto(f"{base}{path}")
        page.wait_for_load_state()

    accessibility_check.wait()  # for the last page's report
    checked = {url.removeprefix(base) for url in accessibility_check.checked}
    assert checked >= set(paths), "axe did not check every page"
    failing = accessibility_check.violations(impacts=FAILING_IMPACTS)
    assert not failing, accessibility_check.report(failing)
    # A minor rule, but one the pages broke: an action column's header said nothing to a screen reader.
    empty_headers = accessibility_check.violations(rule="empty-table-header")
    assert not empty_headers, accessibility_check.report(empty_headers)


@pytest.mark.django_db(transaction=True)
def test_the_browser_fixture_finds_a_serious_violation_on_a_loaded_page(browser_page, accessibility_check):
    """The check runs on its own after a navigation: a served page with unreadable text is seen."""
    page, base = browser_page
    page.route(
        f"{base}/low-contrast",
        lambda route: route.fulfill(
            content_type="text/html",
            body='<!doctype html><html lang="en"><title>t</title><main>'
            '<p style="color:#777;background:#888">unreadable</p></main></html>',
        ),
    )
    page.goto(f"{base}/low-contrast")
    page.wait_for_load_state()

    with pytest.raises(AssertionError, match=r"/low-contrast: color-contrast \(serious\)"):
        accessibility_check.assert_no_serious_violations()  # what fails a browser test after it ran
    found = accessibility_check.take()  # taken, so this test itself is not failed by the hook
    assert [v["id"] for _, v in found if v["impact"] in FAILING_IMPACTS] == ["color-contrast"]
