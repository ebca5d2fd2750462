"""The four DORA measures per environment, each on a hand-built history with a known answer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from insights.selectors import deploys_by_environment
from insights.windows import window_ending, window_parse
from tests.factories import JobFactory, TriggerFactory
from triggers.models import Environment

from .commits import committed

pytestmark = pytest.mark.django_db

S = timedelta(seconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture
def production(org_a):
    return Environment.objects.create(org=org_a, name="production")


def deploy(env, *, finished, status="succeeded", running=60, queue=30, approval=None, commit_before=None, **fields):
    """A job of `env` that finished at `finished` after `running` s, having waited `queue` s to be
    claimed and, before that, `approval` s for its approvals (None: it needed none)."""
    trigger = fields.pop("trigger", None) or TriggerFactory(org=env.org)
    claimed = finished - running * S
    waited_from = claimed - queue * S
    approved = waited_from if approval is not None else None
    created = waited_from - (approval or 0) * S
    with committed():  # the rollup counts it once its save commits
        return JobFactory(
            org=env.org,
            trigger=trigger,
            environment=env,
            environment_name=env.name,
            status=status,
            created_at=created,
            approved_at=approved,
            queued_at=waited_from,
            claimed_at=claimed,
            started_at=claimed,
            finished_at=finished,
            commit_time=None if commit_before is None else created - commit_before * S,
            **fields,
        )


def measure(env, now, window="7d"):
    # The window ending at `now` exactly (the pages' end with the hour: test_a_window_ends_with_the_hour).
    return deploys_by_environment(org_id=env.org_id, environment_ids=[env.pk], window=window_ending(window, now))[
        env.pk
    ]


def test_an_empty_window_has_no_rate_no_restore_and_no_lead_time(production, now):
    deploy(production, finished=now - 20 * D)  # long before both windows
    result = measure(production, now)
    cur = result.current
    assert (cur.ran, cur.succeeded, cur.failures, cur.incidents) == (0, 0, 0, 0)
    assert cur.change_failure_rate is None and cur.restore_mean_seconds is None and cur.lead_mean_seconds is None
    assert result.previous.ran == 0 and result.open_since is None
    assert len(result.buckets) == 7 and all(b.ran == 0 for b in result.buckets)


def test_one_deploy(production, now):
    deploy(production, finished=now - 2 * D, running=60, queue=30)
    result = measure(production, now)
    cur = result.current
    assert (cur.ran, cur.succeeded, cur.failures, cur.incidents) == (1, 1, 0, 0)
    assert cur.change_failure_rate == 0.0
    assert cur.restore_mean_seconds is None
    assert cur.lead_mean_seconds == 90.0
    assert (cur.approval_mean_seconds, cur.queue_mean_seconds, cur.running_mean_seconds) == (0.0, 30.0, 60.0)
    # Bucket 5 of 7 is [now − 2 d, now − 1 d).
    assert [b.succeeded for b in result.buckets] == [0, 0, 0, 0, 0, 1, 0]


def test_lead_time_splits_into_approval_queue_and_running_and_counts_from_the_commit(production, now):
    deploy(production, finished=now - 3 * D, approval=600, queue=30, running=60, commit_before=3600)
    deploy(production, finished=now - 2 * D, queue=10, running=50)
    cur = measure(production, now).current
    assert cur.lead_mean_seconds == (690 + 60) / 2
    assert (cur.approval_mean_seconds, cur.queue_mean_seconds, cur.running_mean_seconds) == (300.0, 20.0, 55.0)
    assert cur.approval_mean_seconds + cur.queue_mean_seconds + cur.running_mean_seconds == cur.lead_mean_seconds
    assert (cur.commit_count, cur.commit_lead_mean_seconds) == (1, 3600.0 + 690)


def test_a_failure_never_restored_stays_open(production, now):
    deploy(production, finished=now - 3 * D)
    deploy(production, finished=now - 2 * D, status="failed")
    deploy(production, finished=now - 1 * D, status="failed")
    result = measure(production, now)
    cur = result.current
    assert (cur.ran, cur.failures) == (3, 2) and cur.change_failure_rate == pytest.approx(2 / 3)
    assert (cur.incidents, cur.restored, cur.restore_mean_seconds) == (1, 0, None)
    assert result.open_since == now - 2 * D


def test_time_to_restore_runs_from_the_first_failure_to_the_next_success(production, now):
    deploy(production, finished=now - 5 * D)
    deploy(production, finished=now - 4 * D, status="failed")
    deploy(production, finished=now - 4 * D + H, status="failed")
    deploy(production, finished=now - 3 * D)
    result = measure(production, now)
    cur = result.current
    assert (cur.ran, cur.failures, cur.incidents, cur.restored) == (4, 2, 1, 1)
    assert cur.restore_mean_seconds == 86400.0
    assert result.open_since is None
    # Charted in the bucket where the incident began: [now − 4 d, now − 3 d).
    assert [b.restore_mean_seconds for b in result.buckets] == [None, None, None, 86400.0, None, None, None]


def test_a_deploy_rolled_back_within_a_day_is_a_change_failure(production, org_a, now):
    deploy(production, finished=now - 5 * D)
    bad = deploy(production, finished=now - 4 * D)
    # Rolled back three hours later (asked for 3 h − 90 s after it finished: within a day).
    deploy(production, finished=now - 4 * D + 3 * H, rollback_of=bad)
    # Another release, rolled back two days later: too late to count against it.
    later = deploy(production, finished=now - 3 * D)
    deploy(production, finished=now - 1 * D, rollback_of=later)
    # A third, whose rollback was refused (rejected: cancelled before it ran): not a failure either.
    kept = deploy(production, finished=now - 2 * D)
    with committed():
        JobFactory(
            org=org_a,
            trigger=TriggerFactory(org=org_a),
            environment=production,
            environment_name="production",
            status="cancelled",
            created_at=now - 2 * D + H,
            finished_at=now - 2 * D + 2 * H,
            rollback_of=kept,
        )
    cur = measure(production, now).current
    assert (cur.ran, cur.succeeded, cur.failures) == (6, 6, 1)
    assert cur.change_failure_rate == pytest.approx(1 / 6)
    # Broken from the bad release's finish until the rollback finished.
    assert (cur.incidents, cur.restored, cur.restore_mean_seconds) == (1, 1, 3 * 3600.0)


def test_jobs_that_never_ran_and_other_environments_do_not_count(production, org_a, org_b, now):
    trigger = TriggerFactory(org=org_a)
    # Rejected, superseded or timed out waiting for approval: cancelled, never claimed.
    JobFactory(
        org=org_a,
        trigger=trigger,
        environment=production,
        environment_name="production",
        status="cancelled",
        finished_at=now - D,
    )
    JobFactory(
        org=org_a, trigger=trigger, environment=production, environment_name="production", status="pending_approval"
    )
    JobFactory(org=org_a, trigger=trigger, environment=production, environment_name="production", status="waiting")
    deploy(production, finished=now - D, status="cancelled")  # stopped by a person while it ran
    staging = Environment.objects.create(org=org_a, name="staging")
    deploy(staging, finished=now - D, status="failed")
    deploy(production, finished=now - 2 * D)
    cur = measure(production, now).current
    assert (cur.ran, cur.succeeded, cur.failures) == (1, 1, 0)


def test_the_trend_compares_with_the_window_before(production, now):
    deploy(production, finished=now - 10 * D)
    deploy(production, finished=now - 9 * D, status="failed")
    for days in (1, 2, 3):
        deploy(production, finished=now - days * D)
    result = measure(production, now)
    assert (result.previous.succeeded, result.previous.ran, result.previous.failures) == (1, 2, 1)
    assert result.current.succeeded == 3
    # The previous window's failure was restored by the first deploy of this one.
    assert (result.previous.incidents, result.previous.restored) == (1, 1)
    assert result.previous.restore_mean_seconds == (9 - 3) * 86400.0


@pytest.mark.parametrize("window,buckets", [("7d", 7), ("30d", 30), ("90d", 13)])
def test_each_window_has_its_buckets_and_the_window_start_is_in_the_first(production, now, window, buckets):
    length = {"7d": 7, "30d": 30, "90d": 90}[window]
    deploy(production, finished=now - length * D)  # the very start of the window
    result = measure(production, now, window)
    assert len(result.buckets) == buckets
    assert result.buckets[0].succeeded == 1 and result.previous.succeeded == 0


def test_a_window_ends_with_the_hour_so_a_deploy_a_minute_ago_is_in_its_last_bucket(production, now):
    at = now.replace(minute=30, second=0)
    window = window_parse("7d", now=at)
    assert window.end == at.replace(minute=0) + H and window.start == window.end - 7 * D
    assert all(edge.minute == edge.second == 0 for edge in window.bucket_starts())
    assert window_parse("7d", now=window.end).end == window.end  # a whole hour is its own end
    deploy(production, finished=at - 60 * S)
    result = deploys_by_environment(org_id=production.org_id, environment_ids=[production.pk], window=window)
    assert result[production.pk].buckets[-1].succeeded == 1 and result[production.pk].current.succeeded == 1
