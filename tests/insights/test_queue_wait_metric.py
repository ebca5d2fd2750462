"""/metrics has the fleet's queue wait: every claim observes how long its job waited to be claimed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.agents.signed import SignedAgent
from tests.factories import AgentFactory, JobFactory, TriggerFactory
from tests.ops.test_metrics import scrape, value

TOKEN = "metrics-token-0123456789"  # noqa: S105 (a test value)


@pytest.fixture
def metrics_on(settings):
    settings.DEPLITE_METRICS_TOKEN = TOKEN


@pytest.mark.postgres
def test_a_claim_observes_its_job_s_wait_in_the_queue_wait_histogram(
    db, metrics_on, org_a, django_capture_on_commit_callbacks
):
    trigger = TriggerFactory(org=org_a, agent_labels=[])
    # Queued 45 s ago: it lands in the (30, 60] bucket, not in the 30 s one.
    JobFactory(org=org_a, trigger=trigger, status="queued", created_at=timezone.now() - timedelta(seconds=45))
    agent = AgentFactory(org=org_a, last_seen_at=timezone.now())
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        assert SignedAgent(agent).claim().status_code == 200
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("deplite_jobs_queue_wait_seconds_count") == 1
    assert 45 <= delta("deplite_jobs_queue_wait_seconds_sum") < 600
    assert delta("deplite_jobs_queue_wait_seconds_bucket", le="30.0") == 0
    assert delta("deplite_jobs_queue_wait_seconds_bucket", le="600.0") == 1
