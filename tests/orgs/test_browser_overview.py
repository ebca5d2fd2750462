"""The Overview page in headless Chromium: a getting-started checklist (bucket linked, agent
online, trigger created, first job run) with links, recent jobs and agents online; the login
page's title says what its heading says; the favicon is served."""

import pytest
from django.utils import timezone

from tests.browser import PASSWORD, screenshot
from tests.factories import AgentFactory, JobFactory, StorageBindingFactory, TriggerFactory


def _steps(page):
    return [
        (li.locator("a").inner_text(), li.get_attribute("data-done"))
        for li in page.locator("[data-testid=checklist] [data-testid=step]").all()
    ]


@pytest.mark.django_db(transaction=True)
def test_overview_checklist_follows_the_setup(browser_page, owner, org_a):
    page, base = browser_page
    page.goto(f"{base}/accounts/login/")
    heading = page.inner_text("h1")
    assert page.title() == f"{heading} · Deplite"
    icon = page.get_attribute("link[rel=icon]", "href")
    favicon = page.request.get(base + icon)
    assert favicon.status == 200 and favicon.headers["content-type"].startswith("image/svg+xml")

    page.fill("input[name=login]", "owner@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/orgs/acme/")
    assert _steps(page) == [
        ("Link a bucket", "false"),
        ("Start an agent", "false"),
        ("Create a trigger", "false"),
        ("Run a first job", "false"),
    ]
    assert page.inner_text("[data-testid=checklist] h2") == "Get started"
    page.click("text=Link a bucket")
    assert page.url == f"{base}/orgs/acme/storage/new/"

    StorageBindingFactory(org=org_a)
    AgentFactory(org=org_a, name="web-1", labels=["prod"], last_seen_at=timezone.now())
    trigger = TriggerFactory(org=org_a, name="deploy-prod")
    job = JobFactory(org=org_a, trigger=trigger)
    page.goto(f"{base}/orgs/acme/")
    assert [done for _, done in _steps(page)] == ["true"] * 4
    assert page.inner_text("[data-testid=checklist] h2") == "You are set up"
    assert f"#{job.short_id} deploy-prod" in page.inner_text("[data-testid=overview-jobs]")
    assert "web-1" in page.inner_text("[data-testid=overview-agents]")
    screenshot(page, "overview")
    page.click("[data-testid=checklist] >> text=Create a trigger")
    assert page.url == f"{base}/orgs/acme/triggers/{trigger.pk}/"
