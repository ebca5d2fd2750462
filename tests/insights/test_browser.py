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


@pytest.mark.django_db(transaction=True)
def test_the_insights_page_and_the_environment_s_own_page_chart_its_deploys_with_a_readable_table(
    browser_page, member, org_a
):
    from triggers.models import Environment

    from .test_dora import D, H, deploy

    page, base = browser_page
    production = Environment.objects.create(org=org_a, name="production")
    now = timezone.now().replace(microsecond=0)
    deploy(production, finished=now - 3 * D + H)
    deploy(production, finished=now - 2 * D + H, status="failed")
    deploy(production, finished=now - 2 * D + 2 * H)
    log_in(page, base, "member@acme.test", then="/orgs/acme/")
    page.click("nav.org >> text=Insights")
    page.click("nav.insights-windows >> text=7d")
    section = page.locator("[data-testid=environment-insights-production]")
    assert "33%" in section.inner_text()  # 1 of 3 deploys failed
    chart = section.locator("[data-testid=chart-env-production-deploys]")
    # Two succeeded bars (blue) and one failure, hatched as well as coloured.
    assert chart.locator('rect[fill="#0072B2"]').count() == 2
    assert chart.locator('rect[fill^="url(#"]').count() == 1 and chart.locator("pattern").count() == 1
    section.locator("#env-production-deploys summary").click()
    table = section.locator("[data-testid=table-env-production-deploys]")
    headers = [th.inner_text() for th in table.locator("thead th").all()]
    assert headers == ["From", "succeeded", "failed"]
    rows = [[td.inner_text() for td in tr.locator("td").all()][1:] for tr in table.locator("tbody tr").all()]
    assert rows == [["0", "0"]] * 4 + [["1", "0"], ["1", "1"], ["0", "0"]]
    wait_for_js(
        page, "!document.querySelector('[data-testid=table-env-production-deploys] time').textContent.endsWith('UTC')"
    )
    screenshot(page, "insights-page")

    # The environment's own page, from its name on the Insights page: the same chart and table there.
    section.locator("h3 a").click()
    page.wait_for_url("**/environments/production/")
    own = page.locator("[data-testid=environment-insights]")
    own.locator("nav.insights-windows >> text=7d").click()
    page.wait_for_url("**/environments/production/?window=7d")
    own = page.locator("[data-testid=environment-insights]")
    assert "33%" in own.inner_text()
    own.locator("#env-production-deploys summary").click()
    table = own.locator("[data-testid=table-env-production-deploys]")
    rows = [[td.inner_text() for td in tr.locator("td").all()][1:] for tr in table.locator("tbody tr").all()]
    assert rows == [["0", "0"]] * 4 + [["1", "0"], ["1", "1"], ["0", "0"]]
    wait_for_js(
        page, "!document.querySelector('[data-testid=table-env-production-deploys] time').textContent.endsWith('UTC')"
    )
