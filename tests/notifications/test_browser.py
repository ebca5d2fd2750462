"""The job page in headless Chromium: a failed notification is listed, and an admin's Retry sends it."""

import pytest

from integrations.models import OutboxMessage
from tests.browser import log_in

from .conftest import finish, run, slack_trigger


@pytest.mark.django_db(transaction=True)
def test_admin_retries_a_failed_notification_from_the_job_page(browser_page, admin_user, org_a, slack_a, fake_slack):
    fake_slack.refuse["C0456"] = "not_in_channel"
    job = finish(run(slack_trigger(org_a, notify_on="failure")), "failed", exit_code=1, error="boom")
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.last_error) == ("failed", "not_in_channel")

    page, base = browser_page
    log_in(page, base, "admin@acme.test", then=f"/orgs/acme/jobs/{job.pk}")
    notifications = page.locator("[data-testid=job-notifications]")
    assert "not_in_channel" in notifications.inner_text()
    # The bot was invited to the channel meanwhile.
    del fake_slack.refuse["C0456"]
    page.click("[data-testid=retry-delivery]")
    page.wait_for_selector("[data-testid=delivery-sent]")
    assert "queued again" in page.inner_text("main")
    row.refresh_from_db()
    assert row.status == "sent"
    [message] = fake_slack.in_channel("C0456")
    assert message["text"].startswith(f"[FAILED] Job #{job.short_id}")
