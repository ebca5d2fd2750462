"""API docs in headless Chromium: Swagger UI groups operations by tag and "Try it out" works
with the logged-in session (CSRF enforced on writes, as for any session request)."""

import json

import pytest

from orgs.models import ApiToken
from tests.browser import log_in


@pytest.mark.django_db(transaction=True)
def test_swagger_try_it_out_uses_the_session_and_groups_by_tag(browser_page, owner, org_a):
    page, base = browser_page
    log_in(page, base, "owner@acme.test", then="/api/docs/")
    page.wait_for_selector(".opblock-tag-section")
    tags = [t.get_attribute("data-tag") for t in page.locator(".opblock-tag").all()]
    assert ["auth", "orgs", "storage", "triggers", "jobs", "environments", "agents"] == [
        t for t in tags if t != "agent protocol"
    ][:7]

    # Try it out: GET /api/orgs with nothing but the session cookie.
    page.click("#operations-orgs-api_orgs_list")
    page.click("#operations-orgs-api_orgs_list >> text=Try it out")
    page.click("#operations-orgs-api_orgs_list >> text=Execute")
    body = page.locator("#operations-orgs-api_orgs_list .live-responses-table .response-col_description pre").first
    body.wait_for()
    assert json.loads(body.inner_text())["results"][0]["slug"] == "acme"

    # A write from the page with the session: refused without the CSRF token, accepted with it.
    csrf = page.evaluate("document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1]")
    status = page.evaluate(
        """async () => (await fetch('/api/orgs/acme/tokens', {method: 'POST', body: '{"name": "x"}'})).status"""
    )
    assert status == 403 and not ApiToken.objects.exists()
    created = page.evaluate(
        """async (csrf) => (await fetch('/api/orgs/acme/tokens',
             {method: 'POST', body: '{"name": "from-swagger"}', headers: {'X-CSRFToken': csrf}})).status""",
        csrf,
    )
    assert created == 201 and ApiToken.objects.get().name == "from-swagger"
