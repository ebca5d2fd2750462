"""Insights in headless Chromium: a chart's numbers read from its table, times in the browser's
timezone, and axe-core finding nothing serious on the charts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser import log_in, screenshot, wait_for_js
from tests.factories import TriggerFactory

from .conftest import ran


@pytest.mark.django_db(transaction=True)
def test_the_trigger_page_charts_the_last_runs_with_their_numbers_in_a_table(browser_page, member, org_a):
    page, base = browser_page
    trigger = TriggerFactory(org=org_a, name="deploy-web")
    now = timezone.now().replace(microsecond=0)
    jobs = [
        ran(
            trigger,
            finished=now - timedelta(minutes=30 - i),
            seconds=60 * (i + 1),
            status="failed" if i == 1 else "succeeded",
        )
        for i in range(3)
    ]
    log_in(page, base, "member@acme.test", then=f"/orgs/acme/triggers/{trigger.pk}/")
    section = page.locator("[data-testid=trigger-insights]")
    assert "67%" in section.inner_text()  # 2 of 3 succeeded
    chart = page.locator("[data-testid=chart-trigger-durations]")
    assert chart.locator("circle").count() == 2 and chart.locator("path").count() == 1  # the failure is a cross
    page.click("#trigger-durations summary")
    rows = page.locator("[data-testid=table-trigger-durations] tbody tr")
    assert rows.count() == 3
    cells = [[cell.inner_text() for cell in rows.nth(i).locator("td").all()] for i in range(3)]
    assert [row[0] for row in cells] == [f"#{job.short_id}" for job in jobs]
    assert [row[2:] for row in cells] == [["succeeded", "1m 0s"], ["failed", "2m 0s"], ["succeeded", "3m 0s"]]
    # The finish time is the browser's local rendering (insights.js), not the server's UTC text.
    wait_for_js(
        page, "!document.querySelector('[data-testid=table-trigger-durations] time').textContent.endsWith('UTC')"
    )
    screenshot(page, "insights-trigger")
    # Each point links to its job.
    chart.locator("a").nth(1).click()
    page.wait_for_url(f"**/orgs/acme/jobs/{jobs[1].pk}")
