"""The insights API: the numbers the pages show, org-scoped (another org's trigger is a 404), in exact queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orgs.models import TokenScope
from tests.factories import AgentFactory, JobFactory, TriggerFactory, make_token

from .conftest import ran

pytestmark = pytest.mark.django_db


def test_trigger_insights_answer_camel_case_numbers(api, member, org_a, now):
    trigger = TriggerFactory(org=org_a)
    first = ran(trigger, finished=now - timedelta(minutes=2), seconds=30, status="failed")
    ran(trigger, finished=now - timedelta(minutes=1), seconds=90)
    body = api.as_user(member).get(f"/api/orgs/acme/triggers/{trigger.pk}/insights").json()
    assert body["successRate"] == 0.5 and body["p50Seconds"] == 60.0 and body["p95Seconds"] == pytest.approx(87.0)
    assert body["runs"][0] == {
        "jobId": str(first.pk),
        "shortId": first.short_id,
        "status": "failed",
        "finishedAt": body["runs"][0]["finishedAt"],
        "durationSeconds": 30.0,
    }
    assert body["steps"] == []


def test_another_org_s_trigger_is_a_404_and_a_trigger_token_sees_only_its_triggers(api, outsider, org_a, now):
    trigger, other = TriggerFactory(org=org_a), TriggerFactory(org=org_a)
    ran(trigger, finished=now, seconds=5)
    assert api.as_user(outsider).get(f"/api/orgs/acme/triggers/{trigger.pk}/insights").status_code == 404
    assert api.as_user(outsider).get(f"/api/orgs/bravo/triggers/{trigger.pk}/insights").status_code == 404
    _, raw = make_token(org_a, scope_type=TokenScope.TRIGGER, trigger_ids=[str(trigger.pk)])
    assert api.as_token(raw).get(f"/api/orgs/acme/triggers/{trigger.pk}/insights").json()["successRate"] == 1.0
    assert api.as_token(raw).get(f"/api/orgs/acme/triggers/{other.pk}/insights").status_code == 404


def test_agents_insights_answer_the_day(api, member, outsider, org_a, now):
    agent = AgentFactory(org=org_a, name="web-1", labels=["prod"])
    trigger = TriggerFactory(org=org_a, agent_labels=["prod"])
    JobFactory(
        org=org_a,
        trigger=trigger,
        agent_id=agent.pk,
        status="succeeded",
        created_at=now - timedelta(hours=2, seconds=30),
        claimed_at=now - timedelta(hours=2),
        finished_at=now - timedelta(hours=1),
    )
    body = api.as_user(member).get("/api/orgs/acme/insights/agents").json()
    assert body["jobs"] == 1 and body["waitP50Seconds"] == 30.0
    (row,) = body["agents"]
    assert (row["id"], row["name"], row["busySeconds"], row["jobs"]) == (str(agent.pk), "web-1", 3600.0, 1)
    assert body["labels"] == [
        {
            "label": "prod",
            "agents": 1,
            "busyShare": pytest.approx(1 / 24),
            "jobs": 1,
            "waitP50Seconds": 30.0,
            "waitP95Seconds": 30.0,
        }
    ]
    assert api.as_user(outsider).get("/api/orgs/acme/insights/agents").status_code == 404


def _queries(api, user, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert api.as_user(user).get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.postgres
def test_the_answers_cost_a_fixed_number_of_queries(api, member, org_a, now):
    trigger = TriggerFactory(org=org_a)
    for i in range(30):
        ran(trigger, finished=now - timedelta(minutes=i), seconds=10)
    AgentFactory(org=org_a)
    # Session and user, membership (with the org), then the reads: the trigger, its runs, their steps.
    assert _queries(api, member, f"/api/orgs/acme/triggers/{trigger.pk}/insights") == 5
    # The agents and the day's jobs.
    assert _queries(api, member, "/api/orgs/acme/insights/agents") == 4
