"""The DORA rollup (insights.models, kept by insights.rollup) gives the same answers as the
statement over the jobs themselves, on a hand-built history and after the changes that move a
deploy's numbers: a rollback asked for (within a day or later), one refused, a late result."""

from __future__ import annotations

import random
from dataclasses import asdict
from datetime import timedelta

import pytest

from insights.models import EnvironmentDay, EnvironmentHour, EnvironmentIncident
from insights.rollup import rollup_rebuild
from insights.selectors import deploys as deploys_selector
from insights.selectors import deploys_by_environment
from insights.windows import window_ending, window_parse
from tests.factories import AgentFactory, JobFactory, TriggerFactory
from triggers import services as trigger_services
from triggers.models import Environment, JobStatus

from .commits import committed

# The rollup is PostgreSQL's (elsewhere the selectors read the jobs): marked, so the SQLite pass
# deselects these rather than skipping them.
pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


S = timedelta(seconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)


def deploy(env, trigger, *, finished, status="succeeded", running=60.0, queue=30.0, approval=None, **fields):
    """A deploy saved as if committed: the rollup counts it (insights.receivers)."""
    with committed():
        return JobFactory(
            **deploy_fields(
                env,
                trigger,
                finished=finished,
                status=status,
                running=running,
                queue=queue,
                approval=approval,
                **fields,
            )
        )


def deploy_fields(env, trigger, *, finished, status="succeeded", running=60.0, queue=30.0, approval=None, **fields):
    claimed = finished - running * S
    queued = claimed - queue * S
    created = queued - (approval or 0) * S
    values = {
        "org": env.org,
        "trigger": trigger,
        "environment": env,
        "environment_name": env.name,
        "status": status,
        "created_at": created,
        "approved_at": queued if approval is not None else None,
        "queued_at": queued,
        "claimed_at": claimed,
        "started_at": claimed,
        "finished_at": finished,
    }
    return {**values, **fields}


def history(env, now, *, days: int, seed: int) -> None:
    """A deploy every 1–6 hours (never a day's gap) for `days` days: failures, runs of them, rollbacks
    asked for within a day and later, a refused one, approvals, commit times, cancelled jobs."""
    rng = random.Random(seed)
    trigger = TriggerFactory(org=env.org)
    at = now - days * D
    while at < now - H:
        roll = rng.random()
        fields = {}
        if rng.random() < 0.5:
            fields["commit_time"] = at - timedelta(minutes=rng.randint(20, 600))
        if roll < 0.05:
            deploy(env, trigger, finished=at, status=JobStatus.CANCELLED, claimed_at=None, started_at=None)
        else:
            status = JobStatus.FAILED if roll < 0.2 else JobStatus.SUCCEEDED
            job = deploy(
                env,
                trigger,
                finished=at,
                status=status,
                running=rng.uniform(30, 900),
                queue=rng.uniform(1, 300),
                approval=rng.uniform(10, 3000) if rng.random() < 0.3 else None,
                **fields,
            )
            if status == JobStatus.SUCCEEDED and rng.random() < 0.06:
                # A rollback of it, asked for within a day, after one, or refused (cancelled before it ran).
                asked = at + rng.choice([2 * H, 20 * H, 30 * H])
                refused = rng.random() < 0.3
                with committed():
                    JobFactory(
                        org=env.org,
                        trigger=trigger,
                        environment=env,
                        environment_name=env.name,
                        rollback_of=job,
                        created_at=asked,
                        status=JobStatus.CANCELLED if refused else JobStatus.QUEUED,
                    )
        at += timedelta(seconds=rng.randint(3600, 6 * 3600), microseconds=rng.randint(0, 999_999))


def answers(org_id, environment_ids, now, *, exact=False):
    """Every window's answers as the pages ask (ending with `now`'s hour), or ending at `now` exactly
    (`exact`: edges inside hours, read from the jobs)."""
    out = {}
    for name in ("7d", "30d", "90d"):
        window = window_ending(name, now) if exact else window_parse(name, now=now)
        result = deploys_by_environment(org_id=org_id, environment_ids=environment_ids, window=window)
        for env_id, env in result.items():
            out[(name, env_id)] = {
                "current": asdict(env.current),
                "previous": asdict(env.previous),
                "buckets": [asdict(b) for b in env.buckets],
                "open_since": env.open_since,
            }
    return out


def assert_same(rolled, direct):
    assert rolled.keys() == direct.keys()
    for key, want in direct.items():
        got = rolled[key]
        assert got["open_since"] == want["open_since"], key
        for part in ("current", "previous"):
            assert got[part] == pytest.approx(want[part]), (key, part)
        for index, (a, b) in enumerate(zip(got["buckets"], want["buckets"], strict=True)):
            assert a == pytest.approx(b), (key, index)


def direct_answers(monkeypatch, org_id, environment_ids, now, *, exact=False):
    # The statement over the jobs (the one SQLite runs), as the known answer.
    with monkeypatch.context() as patch:
        patch.setattr(deploys_selector, "rollup_enabled", lambda: False)
        return answers(org_id, environment_ids, now, exact=exact)


@pytest.fixture
def envs(org_a):
    return [Environment.objects.create(org=org_a, name=name) for name in ("production", "staging")]


def test_the_rollup_gives_the_jobs_answers_on_a_hand_built_history(envs, org_a, now, monkeypatch):
    for seed, env in enumerate(envs):
        history(env, now, days=100, seed=seed)
    ids = [env.pk for env in envs]
    direct = direct_answers(monkeypatch, org_a.pk, ids, now)
    assert EnvironmentHour.objects.filter(environment__in=envs).count() > 700
    assert EnvironmentIncident.objects.filter(environment__in=envs).count() > 20
    assert EnvironmentDay.objects.filter(environment__in=envs).count() >= 200
    rolled = answers(org_a.pk, ids, now)
    assert_same(rolled, direct)
    assert rolled[("90d", ids[0])]["current"]["failures"] > 0 and rolled[("90d", ids[0])]["current"]["restored"] > 0
    # Windows ending inside an hour (their edges' hours read from the jobs): the same at an hour's start,
    # at its last second and at `now`'s own minute.
    for end in (now.replace(minute=0, second=0) - H, now.replace(minute=59, second=59) - 3 * H, now):
        assert_same(
            answers(org_a.pk, ids, end, exact=True), direct_answers(monkeypatch, org_a.pk, ids, end, exact=True)
        )


def test_a_rebuild_writes_the_rows_the_receivers_kept(envs, org_a, now):
    history(envs[0], now, days=20, seed=7)

    def rows():
        hours = EnvironmentHour.objects.filter(org=org_a).order_by("environment_id", "hour")
        incidents = EnvironmentIncident.objects.filter(org=org_a).order_by("environment_id", "started_at")
        return (
            [(h.environment_id, h.hour, h.ran, h.succeeded, h.failures, h.lead_seconds, h.commit_count) for h in hours],
            list(incidents.values_list("environment_id", "started_at", "restored_at")),
            list(EnvironmentDay.objects.filter(org=org_a).order_by("day").values_list("day", "ran", "failures")),
        )

    kept = rows()
    EnvironmentHour.objects.filter(org=org_a).delete()
    EnvironmentIncident.objects.filter(org=org_a).delete()
    EnvironmentDay.objects.filter(org=org_a).delete()
    assert rollup_rebuild(org_id=org_a.pk) == 2
    assert rows() == kept and kept[0] and len(kept[2]) in (20, 21)


def test_a_rollback_asked_for_within_a_day_makes_its_deploy_a_failure_and_a_refusal_undoes_it(envs, org_a, now):
    env, trigger = envs[0], TriggerFactory(org=org_a)
    good = deploy(env, trigger, finished=now - 3 * D)
    deploy(env, trigger, finished=now - 2 * D)
    window = window_parse("7d", now=now)

    def current():
        return deploys_by_environment(org_id=org_a.pk, environment_ids=[env.pk], window=window)[env.pk].current

    assert (current().failures, current().incidents) == (0, 0)
    with committed():
        rollback = JobFactory(
            org=org_a, trigger=trigger, environment=env, rollback_of=good, created_at=now - 3 * D + 5 * H
        )
    assert (current().failures, current().incidents, current().restored) == (1, 1, 1)
    assert current().restore_mean_seconds == pytest.approx(D.total_seconds())
    # Refused: cancelled before it ran (the real service sends job_finished after commit).
    rollback.status, rollback.finished_at = JobStatus.CANCELLED, now - 3 * D + 6 * H
    with committed():
        rollback.save()
    assert (current().failures, current().incidents) == (0, 0)


def test_a_late_result_moves_the_deploy_out_of_its_failed_hour(
    envs, org_a, now, monkeypatch, django_capture_on_commit_callbacks
):
    env, trigger = envs[0], TriggerFactory(org=org_a)
    agent = AgentFactory(org=org_a)
    deploy(env, trigger, finished=now - 5 * H)
    lost = deploy(
        env,
        trigger,
        finished=now - 3 * H,
        running=3600,
        status=JobStatus.FAILED,
        error=trigger_services.AGENT_LOST,
        agent_id=agent.pk,
    )
    window = window_parse("7d", now=now + H)
    before = deploys_by_environment(org_id=org_a.pk, environment_ids=[env.pk], window=window)[env.pk]
    assert (before.current.ran, before.current.failures, before.open_since) == (2, 1, lost.finished_at)

    with django_capture_on_commit_callbacks(execute=True):
        trigger_services.job_finish(job=lost, status=JobStatus.SUCCEEDED, exit_code=0, error=None)
    lost.refresh_from_db()
    assert lost.status == JobStatus.SUCCEEDED and lost.finished_at > now - H

    after = deploys_by_environment(org_id=org_a.pk, environment_ids=[env.pk], window=window)[env.pk]
    assert (after.current.ran, after.current.succeeded, after.current.failures) == (2, 2, 0)
    assert (after.current.incidents, after.open_since) == (0, None)
    hours = set(EnvironmentHour.objects.filter(environment=env).values_list("hour", "ran"))
    assert hours == {
        ((now - 5 * H).replace(minute=0, second=0), 1),
        (lost.finished_at.replace(minute=0, second=0, microsecond=0), 1),
    }
    assert_same(
        {k: v for k, v in answers(org_a.pk, [env.pk], now + H).items()},
        direct_answers(monkeypatch, org_a.pk, [env.pk], now + H),
    )
