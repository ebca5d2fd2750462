"""A trigger's insights on a hand-built history: its last 100 runs, success rate, p50/p95, steps."""

from __future__ import annotations

from datetime import timedelta

import pytest

from insights.selectors import trigger_insights
from tests.factories import JobFactory, TriggerFactory
from triggers.models import JobStep

from .conftest import ran

pytestmark = pytest.mark.django_db


def test_no_run_yet_gives_no_rate_and_no_percentiles(org_a):
    insights = trigger_insights(trigger=TriggerFactory(org=org_a))
    assert insights.runs == [] and insights.steps == []
    assert insights.success_rate is None and insights.p50_seconds is None and insights.p95_seconds is None


def test_success_rate_and_percentiles_over_the_runs_that_ran(org_a, now):
    trigger = TriggerFactory(org=org_a)
    # Durations 10, 20, …, 100 s; the 3rd and 7th failed.
    for i in range(10):
        ran(
            trigger,
            finished=now - timedelta(minutes=10 - i),
            seconds=10 * (i + 1),
            status="failed" if i in (2, 6) else "succeeded",
        )
    # Neither a cancelled job, nor a queued or running one, is a run that ran to an end.
    JobFactory(org=org_a, trigger=trigger, status="cancelled", finished_at=now)
    JobFactory(org=org_a, trigger=trigger, status="queued")
    JobFactory(org=org_a, trigger=trigger, status="running", claimed_at=now)
    # Another trigger's runs are not this one's.
    ran(TriggerFactory(org=org_a), finished=now, seconds=999)

    insights = trigger_insights(trigger=trigger)
    assert [r.duration_seconds for r in insights.runs] == [10.0 * (i + 1) for i in range(10)]  # oldest first
    assert [r.failed for r in insights.runs].count(True) == 2 and insights.failures == 2
    assert insights.success_rate == pytest.approx(0.8)
    assert insights.p50_seconds == pytest.approx(55.0)  # between 50 and 60, as percentile_cont
    assert insights.p95_seconds == pytest.approx(95.5)


def test_only_the_last_100_runs_count(org_a, now):
    trigger = TriggerFactory(org=org_a)
    # 5 old failures, then 100 successes: the failures fell out of the window.
    for i in range(105):
        ran(trigger, finished=now - timedelta(minutes=200 - i), seconds=30, status="failed" if i < 5 else "succeeded")
    insights = trigger_insights(trigger=trigger)
    assert len(insights.runs) == 100 and insights.success_rate == 1.0


def test_steps_say_which_one_takes_the_time(org_a, now):
    trigger = TriggerFactory(org=org_a)
    for i, (build, deploy) in enumerate([(60, 20), (120, 40)]):
        job = ran(
            trigger,
            finished=now - timedelta(minutes=5 - i),
            seconds=build + deploy,
            status="failed" if i else "succeeded",
        )
        start = job.started_at
        JobStep.objects.create(
            org=org_a,
            job=job,
            index=0,
            name="build",
            status="succeeded",
            started_at=start,
            finished_at=start + timedelta(seconds=build),
        )
        JobStep.objects.create(
            org=org_a,
            job=job,
            index=1,
            name="deploy",
            status="failed" if i else "succeeded",
            started_at=start + timedelta(seconds=build),
            finished_at=start + timedelta(seconds=build + deploy),
        )
        # A step the agent listed but never started is not timed.
        JobStep.objects.create(org=org_a, job=job, index=2, name="notify", status="pending")
    steps = trigger_insights(trigger=trigger).steps
    assert [(s.name, s.runs, s.failures, s.mean_seconds) for s in steps] == [
        ("build", 2, 0, 90.0),
        ("deploy", 2, 1, 30.0),
    ]
    assert [round(s.share, 2) for s in steps] == [0.75, 0.25]
