"""The Insights page (linked from the org nav) and the trigger page's insights section."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from tests.factories import AgentFactory, JobFactory, TriggerFactory

from .conftest import ran

pytestmark = pytest.mark.django_db


def test_the_insights_page_shows_the_agents_day_per_label(member_client, org_a, now):
    agent = AgentFactory(org=org_a, name="web-1", labels=["staging"])
    trigger = TriggerFactory(org=org_a, agent_labels=["staging"])
    JobFactory(
        org=org_a,
        trigger=trigger,
        agent_id=agent.pk,
        status="succeeded",
        created_at=now - timedelta(hours=6, minutes=2),
        claimed_at=now - timedelta(hours=6),
        finished_at=now,
    )
    response = member_client.get("/orgs/acme/insights/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'href="/orgs/acme/insights/"' in html and ">Insights</a>" in html  # the nav link
    assert 'data-testid="chart-agents-busy"' in html and "web-1: 25% busy" in html  # 6 h of 24
    labels = html[html.index('data-testid="labels-table"') :]
    assert "staging" in labels and "2m 0s" in labels  # its job waited 2 minutes


def test_a_bad_window_on_the_page_falls_back_to_30_days(member_client, org_a):
    html = member_client.get("/orgs/acme/insights/?window=1y").content.decode()
    assert 'href="?window=30d" aria-current="page"' in html


def test_an_outsider_gets_a_404(outsider, org_a):
    client = Client()
    client.force_login(outsider)
    assert client.get("/orgs/acme/insights/").status_code == 404


def test_the_trigger_page_shows_its_success_rate_and_no_step_table_without_timed_steps(member_client, org_a, now):
    trigger = TriggerFactory(org=org_a)
    ran(trigger, finished=now, seconds=30)
    html = member_client.get(f"/orgs/acme/triggers/{trigger.pk}/").content.decode()
    assert 'data-testid="trigger-insights"' in html and "100%" in html
    assert 'data-testid="trigger-steps"' not in html  # no step was timed


def test_a_trigger_never_run_says_so(member_client, org_a):
    trigger = TriggerFactory(org=org_a)
    html = member_client.get(f"/orgs/acme/triggers/{trigger.pk}/").content.decode()
    assert "No run of this trigger has finished yet." in html


# --- environments ------------------------------------------------------------------------------------


def test_the_insights_page_shows_every_environment_with_its_four_measures(member_client, org_a, now):
    from triggers.models import Environment

    from .test_dora import D, H, deploy

    production = Environment.objects.create(org=org_a, name="production")
    Environment.objects.create(org=org_a, name="staging")
    deploy(production, finished=now - 2 * D + H, status="failed")
    deploy(production, finished=now - D + H)
    html = member_client.get("/orgs/acme/insights/?window=7d").content.decode()
    prod = html[
        html.index('data-testid="environment-insights-production"') : html.index(
            'data-testid="environment-insights-staging"'
        )
    ]
    for label in ("Deployment frequency", "Change failure rate", "Time to restore", "Lead time"):
        assert label in prod
    assert "50%" in prod and "1 of 2 deploys" in prod  # the change failure rate
    assert "1d 0h" in prod  # restored a day after it broke
    for chart in ("deploys", "failure-rate", "restore", "lead"):
        assert (
            f'data-testid="chart-env-production-{chart}"' in prod
            and f'data-testid="table-env-production-{chart}"' in prod
        )
    staging = html[html.index('data-testid="environment-insights-staging"') :]
    assert "No deploy to staging finished in this window." in staging


def test_the_environment_page_include_renders_one_environment(org_a, rf, now):
    from django.template.loader import render_to_string

    from triggers.models import Environment

    from .test_dora import D, H, deploy

    production = Environment.objects.create(org=org_a, name="production")
    deploy(production, finished=now - D + H, queue=30, running=90)
    html = render_to_string(
        "insights/_environment_insights.html", {"environment": production, "org": org_a}, request=rf.get("/?window=90d")
    )
    assert 'data-testid="environment-insights"' in html
    assert 'href="?window=90d" aria-current="page"' in html and "Over the last 90 days" in html
    assert "2m 0s" in html  # lead time: 30 s waiting + 90 s running
    assert html.count("<tbody>") == 4 and 'data-testid="table-env-production-lead"' in html


def test_the_environment_page_shows_its_insights(member_client, org_a, now):
    from triggers.models import Environment

    from .test_dora import D, H, deploy

    production = Environment.objects.create(org=org_a, name="production")
    deploy(production, finished=now - D + H, status="failed")
    html = member_client.get("/orgs/acme/environments/production/?window=7d").content.decode()
    section = html[html.index('data-testid="environment-insights"') :]
    assert "100%" in section and "1 of 1 deploys" in section and "not restored yet" in section
    assert 'data-testid="table-env-production-deploys"' in section
