"""Agents in headless Chromium: create an agent, see its secret and env once."""

import pytest

from agents.models import Agent
from tests.browser import log_in, screenshot


@pytest.mark.django_db(transaction=True)
def test_admin_creates_an_agent_in_the_browser_and_sees_the_secret_once(browser_page, admin_user, org_a, tmp_path):
    page, base = browser_page
    log_in(page, base, "admin@acme.test", then="/orgs/acme/")
    page.click("nav.org >> text=Agents")
    page.fill("input[name=name]", "web-1")
    page.fill("input[name=labels]", "prod, linux")
    page.click("text=Create agent")

    secret = page.locator("[data-testid=agent-secret]").inner_text().strip()
    page.click("text=Or configure an agent you installed yourself")
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


@pytest.mark.django_db(transaction=True)
def test_the_agents_page_gives_the_one_command_that_installs_the_new_agent(
    browser_page, admin_user, org_a, settings, tmp_path
):
    page, base = browser_page
    settings.DEPLITE_PUBLIC_URL = base
    log_in(page, base, "admin@acme.test", then="/orgs/acme/agents/")
    page.fill("input[name=name]", "web-2")
    page.click("text=Create agent")

    agent = Agent.objects.get(name="web-2")
    install = page.locator("[data-testid=agent-install]").inner_text().strip()
    systemd = page.locator("[data-testid=agent-install-systemd]").inner_text().strip()
    screenshot(page, "agents-install-command")
    assert install == f"curl -fsSL {base}/agent/install.sh | sh -s -- --agent-id {agent.pk}"
    assert systemd == f"curl -fsSL {base}/agent/install.sh | sudo sh -s -- --agent-id {agent.pk} --systemd"
    # The secret is not in the command (it is asked on the host's terminal), and is shown this once.
    assert agent.secret not in install and agent.secret not in systemd
    page.reload()
    assert page.locator("[data-testid=agent-install]").count() == 0
