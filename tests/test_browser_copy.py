"""Copy buttons in headless Chromium: a secret shown once, an id and a snippet each go to the
clipboard exactly as shown."""

import pytest

from tests.browser import log_in


@pytest.mark.django_db(transaction=True)
def test_copy_buttons_put_secrets_ids_and_snippets_on_the_clipboard(browser_page, admin_user, org_a):
    page, base = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, base, "admin@acme.test", then="/orgs/acme/agents/")
    page.fill("input[name=name]", "web-1")
    page.click("form.stacked button[type=submit]")
    page.click("text=Or configure an agent you installed yourself")
    for target in ("agent-secret", "agent-id", "agent-install", "agent-install-systemd", "agent-env"):
        page.click(f"button[data-copy-from='#{target}']")
        assert page.evaluate("navigator.clipboard.readText()") == page.text_content(f"#{target}")
        if target == "agent-install":
            assert page.evaluate("navigator.clipboard.readText()").startswith("curl -fsSL ")
    assert page.evaluate("navigator.clipboard.readText()").startswith("export DEPLITE_URL=")

    page.goto(f"{base}/orgs/acme/tokens/")
    page.click("button[type=submit] >> text=Create token")
    page.click("button[data-copy-from='#new-token']")
    assert page.evaluate("navigator.clipboard.readText()").startswith("tk_")
