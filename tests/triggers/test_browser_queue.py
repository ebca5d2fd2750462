"""Queue diagnostics in headless Chromium: a queued job no online agent can take says why,
on the job page (updating when an agent with the labels comes online) and on the trigger
page; the Agents page shows each agent's current job."""

import pytest
from django.utils import timezone

from orgs.actors import Actor
from tests.browser import log_in, screenshot
from triggers import services
from triggers.models import JobSource

from ..factories import AgentFactory, TriggerFactory


@pytest.mark.django_db(transaction=True)
def test_a_queued_job_says_which_labels_no_online_agent_has(browser_page, member, org_a, org_b):
    page, base = browser_page
    trigger = TriggerFactory(org=org_a, name="deploy-staging", agent_labels=["staging"])
    run = services.trigger_run(
        trigger=trigger, actor=Actor(kind="user", label="m"), source=JobSource.UI, ref="main", params={}
    )
    log_in(page, base, "member@acme.test", then=f"/orgs/acme/jobs/{run.job_id}")
    assert page.inner_text("[data-testid=queue-diagnosis]").startswith("No agent is online")

    prod = AgentFactory(org=org_a, name="prod-1", labels=["prod"], last_seen_at=timezone.now())
    AgentFactory(org=org_b, name="theirs", labels=["staging"], last_seen_at=timezone.now())  # another org's: no help
    page.wait_for_selector("[data-testid=queue-diagnosis] >> text=No online agent has the labels [staging].")
    screenshot(page, "job-queued-diagnosis")

    page.goto(f"{base}/orgs/acme/triggers/{trigger.pk}/")
    assert page.inner_text("[data-testid=queue-diagnosis]") == (
        "No online agent has the labels [staging]. 1 job of this trigger waits in the queue."
    )

    # An agent with the labels comes online: the job page stops warning, and once it takes the
    # job the Agents page shows it as that agent's current job.
    staging = AgentFactory(org=org_a, name="staging-1", labels=["staging", "linux"], last_seen_at=timezone.now())
    page.goto(f"{base}/orgs/acme/jobs/{run.job_id}")
    assert page.locator("[data-testid=queue-diagnosis]").count() == 0
    services.job_claim_next(org_id=org_a.pk, agent_id=staging.pk, agent_name=staging.name, agent_labels=staging.labels)
    page.goto(f"{base}/orgs/acme/agents/")
    rows = {r.locator("td").first.inner_text().split("\n")[0]: r for r in page.locator("tbody tr").all()}
    assert (
        rows["staging-1"].locator("[data-testid=current-job]").inner_text() == f"#{run.body['shortId']} deploy-staging"
    )
    assert rows[prod.name].locator("[data-testid=current-job]").inner_text() == "idle"
    screenshot(page, "agents")
