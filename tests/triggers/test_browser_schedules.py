"""A schedule in headless Chromium: added through the trigger page's form, its next fire times
read back on the trigger page in the browser's own timezone (ui.js formats <time datetime>)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.browser import log_in
from triggers.models import Schedule
from triggers.schedules import cron

from ..factories import TriggerFactory


@pytest.mark.django_db(transaction=True)
def test_admin_adds_a_schedule_and_reads_its_next_fire_times_in_the_browsers_timezone(browser_page, admin_user, org_a):
    page, base = browser_page
    # The browser lives in Tokyo (UTC+9, no daylight saving): 09:00 Berlin shows as 17:00 in winter, 16:00 in summer.
    page.context.new_cdp_session(page).send("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    trigger = TriggerFactory(org=org_a, name="nightly")
    log_in(page, base, "admin@acme.test", then=f"/orgs/acme/triggers/{trigger.pk}/")
    page.click("text=Add schedule")
    page.wait_for_load_state("load")  # ui.js (deferred) has run
    # A new schedule's timezone starts as the browser's own.
    assert page.input_value("input[name=timezone]") == "Asia/Tokyo"
    page.fill("input[name=cron]", "0 9 * * 1-5")
    page.fill("input[name=timezone]", "Europe/Berlin")
    page.fill("textarea[name=params]", "ENV=staging")
    page.click("button:has-text('Add schedule')")
    page.wait_for_selector("text=Schedule 0 9 * * 1-5 (Europe/Berlin) added.")
    page.wait_for_load_state("load")

    schedule = Schedule.objects.get()
    assert schedule.params == {"ENV": "staging"} and schedule.created_by == admin_user
    row = page.locator("[data-testid=schedule]")
    assert row.locator("[data-testid=schedule-description]").inner_text() == (
        "At 09:00 on Monday through Friday, Europe/Berlin"
    )
    shown = row.locator("[data-testid=next-fire-times] time")
    assert shown.count() == 5
    expected = cron.fires_after("0 9 * * 1-5", "Europe/Berlin", datetime.now(UTC), 5)
    for index, moment in enumerate(expected):
        item = shown.nth(index)
        assert item.get_attribute("datetime") == moment.isoformat()
        text = item.inner_text()
        # The browser's timezone, not UTC and not Berlin: GMT+9, and 16:00 or 17:00 local.
        tokyo_hour = (moment.hour + 9) % 24
        assert f"{tokyo_hour:02d}:00" in text and "GMT+9" in text, text
        assert item.get_attribute("title").endswith("UTC")
