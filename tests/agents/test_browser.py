"""Agents in headless Chromium: create an agent, see its secret and env once."""

import pytest

from agents.models import Agent
from tests.browser import log_in


@pytest.mark.django_db(transaction=True)
def test_admin_creates_an_agent_in_the_browser_and_sees_the_secret_once(browser_page, admin_user, org_a, tmp_path):
    page, base = browser_page
    log_in(page, base, "admin@acme.test", then="/orgs/acme/")
    page.click("nav.org >> text=Agents")
    page.fill("input[name=name]", "web-1")
    page.fill("input[name=labels]", "prod, linux")
    page.click("text=Create agent")

    secret = page.locator("[data-testid=agent-secret]").inner_text().strip()
    env = page.locator("[data-testid=agent-env]").inner_text()
    page.screenshot(path=str(tmp_path / "agents.png"), full_page=True)
    agent = Agent.objects.get(name="web-1")
    assert secret == agent.secret
    assert f"DEPLITE_AGENT_ID={agent.pk}" in env and f"DEPLITE_AGENT_SECRET={secret}" in env
    assert "deplite-agent run" in env

    page.reload()
    assert page.locator("[data-testid=agent-secret]").count() == 0
    assert secret not in page.content()
    assert "web-1" in page.content() and "offline" in page.content()
