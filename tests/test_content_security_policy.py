"""A strict Content-Security-Policy on every page, and the pages still work under it in
Chromium: htmx, the confirm dialogs, the job page's log follower and Swagger UI are all
static files of this origin (issue 11 item 8)."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.browser import log_in
from tests.factories import AgentFactory, JobFactory, TriggerFactory

# Collects every CSP violation the page reports, from before its first script runs.
WATCH_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || ""));
});
"""


def test_pages_carry_a_strict_policy_and_json_needs_none(client, owner, org_a):
    policy = settings.DEPLITE_CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    for path in ("/accounts/login/", "/admin/login/", "/api/docs/"):
        assert client.get(path)["Content-Security-Policy"] == policy, path
    client.force_login(owner)
    page = client.get("/orgs/acme/")
    assert page["Content-Security-Policy"] == policy
    html = page.content.decode()
    assert "<style" not in html and "<script>" not in html and " style=" not in html and "onsubmit" not in html


@pytest.mark.django_db(transaction=True)
def test_pages_work_in_chromium_under_the_policy(browser_page, admin_user, org_a):
    page, base = browser_page
    page.add_init_script(WATCH_VIOLATIONS)
    agent = AgentFactory(org=org_a, name="web-1")
    job = JobFactory(org=org_a, trigger=TriggerFactory(org=org_a, name="deploy-prod"))

    log_in(page, base, "admin@acme.test", then="/orgs/acme/agents/")
    assert page.evaluate("window.__csp") == []
    # The confirm dialog comes from site.js now: dismissing it keeps the agent.
    dialogs = []
    page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.click("text=Revoke")
    page.wait_for_timeout(300)
    assert dialogs == ["Revoke web-1? Its running jobs fail."]
    agent.refresh_from_db()
    assert agent.revoked_at is None
    page.once("dialog", lambda d: d.accept())
    page.click("text=Revoke")
    page.wait_for_selector("text=Agent web-1 revoked")
    agent.refresh_from_db()
    assert agent.revoked_at is not None

    page.goto(f"{base}/orgs/acme/jobs/{job.pk}")
    page.wait_for_load_state("load")
    assert page.evaluate("typeof window.htmx") == "object"
    # htmx is configured not to inject its indicator <style>, and nothing inline was refused.
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    assert page.evaluate("window.__csp") == []

    page.goto(f"{base}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Deplite API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag")
    assert page.evaluate("window.__csp") == []

    page.goto(f"{base}/admin/login/")
    page.wait_for_selector("input[name=username]")
    assert page.evaluate("window.__csp") == []
