"""The Integrations page in headless Chromium: a linked workspace is listed and an admin
disconnects it after confirming."""

import pytest

from integrations.models import Installation
from tests.browser import log_in
from tests.factories import InstallationFactory


@pytest.mark.django_db(transaction=True)
def test_integrations_page_shows_a_linked_workspace_and_disconnects_it(browser_page, admin_user, org_a, settings):
    settings.SLACK_CLIENT_ID, settings.SLACK_CLIENT_SECRET, settings.SLACK_SIGNING_SECRET = "1.2", "s", "sig"
    installation = InstallationFactory(org=org_a, external_id="T0123", name="Acme Slack", bot_token="xoxb-never-shown")
    page, base = browser_page
    log_in(page, base, "admin@acme.test", then="/orgs/acme/")
    page.click("nav.org >> text=Integrations")
    row = page.locator("[data-testid=installation-T0123]")
    assert "Acme Slack" in row.inner_text()
    assert "xoxb-never-shown" not in page.content()
    assert page.locator("[data-testid=add-slack]").is_visible()
    assert "Discord is not configured on this server." in page.inner_text("main")

    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.locator("text=Disconnect").click()
    page.wait_for_selector("text=Disconnected Slack Acme Slack.")
    assert dialogs and "Disconnect Slack Acme Slack?" in dialogs[0]
    assert "Nothing linked yet." in page.inner_text("[data-testid=installations]")
    assert not Installation.objects.filter(pk=installation.pk).exists()
