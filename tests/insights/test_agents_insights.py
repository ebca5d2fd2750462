"""The fleet's day on a hand-built history: busy share per agent and label, queue waits per label."""

from __future__ import annotations

from datetime import timedelta

import pytest

from insights.selectors import agents_insights
from tests.factories import AgentFactory, JobFactory, TriggerFactory

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)


def _job(agent, *, labels, created, claimed, finished=None, status="succeeded"):
    trigger = TriggerFactory(org=agent.org, agent_labels=labels)
    return JobFactory(
        org=agent.org,
        trigger=trigger,
        agent_id=agent.pk,
        agent_name=agent.name,
        status=status if finished else "running",
        created_at=created,
        claimed_at=claimed,
        started_at=claimed,
        finished_at=finished,
    )


def test_busy_and_idle_per_agent_and_label_and_queue_waits(org_a, org_b, now):
    a = AgentFactory(org=org_a, name="a", labels=["staging"])
    b = AgentFactory(org=org_a, name="b", labels=["prod"])
    c = AgentFactory(org=org_a, name="c", labels=["prod"])
    AgentFactory(org=org_a, name="gone", revoked_at=now - 3 * H)  # revoked within the day: still listed
    AgentFactory(org=org_a, name="long-gone", revoked_at=now - 50 * H)
    # a: a job across the day's start (2 h of it count, no wait: claimed before the day) and one of 2 h.
    _job(a, labels=["staging"], created=now - 31 * H, claimed=now - 30 * H, finished=now - 22 * H)
    _job(a, labels=["staging"], created=now - 3 * H - timedelta(minutes=10), claimed=now - 3 * H, finished=now - H)
    # b: running for 30 min, after a minute in the queue.
    _job(b, labels=["prod"], created=now - timedelta(minutes=31), claimed=now - timedelta(minutes=30))
    # c: a job any agent could take, 20 s in the queue, 1 h long; and one of two days ago.
    _job(c, labels=[], created=now - 5 * H - timedelta(seconds=20), claimed=now - 5 * H, finished=now - 4 * H)
    _job(c, labels=["prod"], created=now - 49 * H, claimed=now - 49 * H, finished=now - 48 * H)
    # Another org's busy agent changes nothing here.
    other = AgentFactory(org=org_b, name="a", labels=["staging"])
    _job(other, labels=["staging"], created=now - 2 * H, claimed=now - 2 * H, finished=now - H)

    insights = agents_insights(org=org_a, now=now)
    by_name = {load.name: load for load in insights.agents}
    assert sorted(by_name) == ["a", "b", "c", "gone"]
    assert by_name["a"].busy_seconds == 4 * 3600 and by_name["a"].busy_share == pytest.approx(1 / 6)
    assert by_name["b"].busy_seconds == 1800 and by_name["c"].busy_seconds == 3600
    assert by_name["gone"].busy_seconds == 0 and by_name["gone"].status == "revoked"
    assert (by_name["a"].jobs, by_name["b"].jobs, by_name["c"].jobs) == (2, 1, 1)

    assert insights.jobs == 3  # claimed during the day
    assert insights.wait_p50_seconds == 60.0
    assert insights.wait_p95_seconds == pytest.approx(546.0)  # 60 + 0.9 × (600 − 60)
    labels = {row.label: row for row in insights.labels}
    assert list(labels) == [None, "prod", "staging"]  # jobs naming no label first
    assert (labels["staging"].agents, labels["staging"].jobs, labels["staging"].wait_p50_seconds) == (1, 1, 600.0)
    assert labels["staging"].busy_share == pytest.approx(1 / 6)
    assert (labels["prod"].agents, labels["prod"].jobs, labels["prod"].wait_p95_seconds) == (2, 1, 60.0)
    assert labels["prod"].busy_share == pytest.approx((1800 + 3600) / 86400 / 2)
    assert (labels[None].agents, labels[None].jobs, labels[None].wait_p50_seconds) == (4, 1, 20.0)


def test_an_org_without_agents_or_jobs_has_an_empty_day(org_a, now):
    insights = agents_insights(org=org_a, now=now)
    assert insights.agents == [] and insights.labels == [] and insights.jobs == 0
    assert insights.wait_p50_seconds is None and insights.wait_p95_seconds is None
