"""The web UI in headless Chromium: log in, create an API token, see it once."""

import pytest

from orgs.models import ApiToken


@pytest.mark.django_db(transaction=True)
def test_owner_logs_in_and_creates_a_token_in_the_browser(browser_page, owner, org_a, tmp_path):
    page, base = browser_page
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", "owner@acme.test")
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/orgs/acme/")
    assert page.locator("h1").inner_text() == "Acme"

    page.click("text=API tokens")
    page.fill("input[name=name]", "github-actions")
    page.click("text=Create token")
    secret = page.locator("[data-testid=new-token]").inner_text().strip()
    page.screenshot(path=str(tmp_path / "tokens.png"), full_page=True)

    token = ApiToken.objects.get(name="github-actions")
    assert secret.startswith(token.prefix) and len(secret) == 39
    page.reload()
    assert page.locator("[data-testid=new-token]").count() == 0
    assert "github-actions" in page.content()
