"""Agent versions: agents older than DEPLITE_AGENT_MIN_VERSION are refused with `426 agent_too_old` (and
told how to upgrade); the API and the Agents page flag agents older than the version the server serves."""

from __future__ import annotations

from django.test import Client

from agents.models import Agent

from ..factories import AgentFactory, JobFactory, TriggerFactory
from .signed import SignedAgent

INSTALL = "curl -fsSL http://127.0.0.1:8000/agent/install.sh | sh -s -- --agent-id"


def _as_version(agent, version: str) -> SignedAgent:
    """Signed requests the way agents from 0.2.0 send them: every request names the version in its User-Agent."""
    return SignedAgent(agent, client=Client(HTTP_USER_AGENT=f"deplite-agent/{version}"))


def test_an_agent_older_than_the_minimum_is_refused_on_heartbeat_and_claim_and_told_how_to_upgrade(
    agent, org_a, settings
):
    settings.DEPLITE_AGENT_MIN_VERSION = "0.2.0"
    JobFactory(org=org_a, trigger=TriggerFactory(org=org_a))
    # An agent of the first release names its version only in its heartbeat (python-requests' User-Agent).
    old = SignedAgent(agent, client=Client(HTTP_USER_AGENT="python-requests/2.32.3"))

    # Its claim is judged by the version its (refused) heartbeat reported.
    for response in (old.heartbeat(hostname="web-9", version="0.1.0"), old.claim()):
        assert response.status_code == 426, response.content
        error = response.json()["error"]
        assert error["code"] == "agent_too_old"
        assert "(0.1.0) is older than the oldest version this server accepts (0.2.0)" in error["message"]
        assert f"{INSTALL} {agent.pk}" in error["message"]  # what an old agent logs with each retry
        assert error["details"]["minimumVersion"] == "0.2.0" and error["details"]["agentVersion"] == "0.1.0"

    agent.refresh_from_db()
    # The page shows which version is refused; the refused heartbeat recorded nothing else, nor was a job handed out.
    assert agent.version == "0.1.0" and agent.hostname == ""
    assert not org_a.jobs.filter(agent_id=agent.pk).exists()


def test_the_user_agent_names_the_version_of_every_request(agent, settings):
    settings.DEPLITE_AGENT_MIN_VERSION = "0.2.0"
    # The heartbeat's body says 1.0.0, but this process is 0.1.5: refused.
    assert _as_version(agent, "0.1.5").heartbeat(version="1.0.0").status_code == 426
    assert _as_version(agent, "0.1.5").claim().status_code == 426
    # The host upgraded: the new process is served at once, before its first heartbeat.
    assert _as_version(agent, "0.2.0").claim().status_code == 204
    assert _as_version(agent, "0.10.0").heartbeat().status_code == 200  # versions compare as versions, not text


def test_a_client_naming_no_version_is_served(agent, settings):
    settings.DEPLITE_AGENT_MIN_VERSION = "0.2.0"
    assert SignedAgent(agent).heartbeat(version="").status_code == 200
    assert SignedAgent(agent).claim().status_code == 204


def test_a_refused_agent_still_delivers_the_report_of_a_job_it_holds(agent, org_a, settings):
    """Raising the minimum while jobs run must not lose their results."""
    job = JobFactory(org=org_a, trigger=TriggerFactory(org=org_a))
    old = _as_version(agent, "0.1.0")
    assert old.claim().status_code == 200
    settings.DEPLITE_AGENT_MIN_VERSION = "0.2.0"
    assert old.claim().status_code == 426
    assert old.events(job.pk, [{"seq": 1, "type": "log", "step": 0, "data": "done\n"}]).status_code == 200
    assert old.finish(job.pk, "succeeded", 0).status_code == 200
    job.refresh_from_db()
    assert job.status == "succeeded"


def test_the_api_flags_agents_older_than_the_served_version_with_the_command(api, owner, org_a, served_agent):
    old = AgentFactory(org=org_a, name="old", version="0.1.0")
    current = AgentFactory(org=org_a, name="current", version=served_agent.version)
    AgentFactory(org=org_a, name="never-seen", version="")
    rows = {a["name"]: a for a in api.as_user(owner).get("/api/orgs/acme/agents").json()["results"]}
    assert rows["old"]["updateAvailable"] is True
    assert rows["old"]["updateCommand"] == f"{INSTALL} {old.pk}"
    for name in ("current", "never-seen"):
        assert rows[name]["updateAvailable"] is False and rows[name]["updateCommand"] is None
    one = api.as_user(owner).get(f"/api/orgs/acme/agents/{current.pk}").json()
    assert one["updateAvailable"] is False


def test_nothing_is_flagged_when_the_server_serves_no_agent(api, owner, org_a):
    AgentFactory(org=org_a, name="old", version="0.1.0")
    row = api.as_user(owner).get("/api/orgs/acme/agents").json()["results"][0]
    assert row["updateAvailable"] is False and row["updateCommand"] is None


def test_the_agents_page_shows_update_available_and_update_required_with_the_command(
    member, org_a, served_agent, settings
):
    settings.DEPLITE_AGENT_MIN_VERSION = "0.1.5"
    behind = AgentFactory(org=org_a, name="behind", version="0.1.9")
    refused = AgentFactory(org=org_a, name="refused", version="0.1.0")
    AgentFactory(org=org_a, name="current", version=served_agent.version)
    client = Client()
    client.force_login(member)
    html = client.get("/orgs/acme/agents/").content.decode()
    assert html.count('data-testid="agent-update-command"') == 2
    assert "update available" in html and f"{INSTALL} {behind.pk}" in html
    assert "update required" in html and f"{INSTALL} {refused.pk}" in html
    assert f"deplite-agent {served_agent.version}</a>" in html
    assert Agent.objects.count() == 3
