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


@pytest.mark.django_db(transaction=True)
def test_the_identity_link_page_links_the_chat_user_after_confirming(browser_page, member, org_a, settings):
    """`/deplite login`'s link, opened by the member: who is linked to whom, then the confirm button."""
    from integrations import identities
    from integrations.models import ChatIdentity

    settings.DEPLITE_PUBLIC_URL = "http://testserver"
    installation = InstallationFactory(org=org_a, external_id="T0123", name="Acme Slack")
    url = identities.link_issue(installation=installation, chat_user_id="U0ALICE", chat_user_name="alice")
    page, base = browser_page
    log_in(page, base, "member@acme.test", then=url.removeprefix("http://testserver"))
    summary = page.inner_text("[data-testid=link-summary]")
    assert "alice" in summary and "U0ALICE" in summary and "Acme Slack" in summary and "member@acme.test" in summary
    assert not ChatIdentity.objects.exists()
    page.click("[data-testid=link-confirm]")
    page.wait_for_selector("[data-testid=link-done]")
    identity = ChatIdentity.objects.get()
    assert (identity.user, identity.chat_user_id, identity.team_id) == (member, "U0ALICE", "T0123")
    # Used once: opening it again says so.
    page.goto(f"{base}{url.removeprefix('http://testserver')}")
    assert "already used" in page.inner_text("[data-testid=link-refused]")
    page.goto(f"{base}/orgs/acme/integrations/identities/")
    assert "U0ALICE" in page.inner_text("[data-testid=chat-identities]")
