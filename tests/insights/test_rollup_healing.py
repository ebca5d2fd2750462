"""The DORA rollup stays right when its keeping goes wrong: a save's recompute waits for the commit
(and a rolled-back save never reaches it), a failing recompute is logged and never breaks the save, and
what was written past the receivers (bulk inserts, updates, deletes) is healed by the periodic
reconcile (the last 48 hours) or by `manage.py rollup_rebuild` (any age)."""

from __future__ import annotations

import io
import logging
import random
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction

from insights import rollup
from insights.models import EnvironmentDay, EnvironmentHour, EnvironmentIncident
from insights.reconcile import Reconciled, rollup_reconcile
from insights.tasks import insights_rollup_reconcile
from tests.factories import JobFactory, TriggerFactory
from triggers.models import Environment, Job, JobStatus

from .test_rollup import D, H, answers, assert_same, deploy, deploy_fields, direct_answers, history

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def envs(org_a):
    return [Environment.objects.create(org=org_a, name=name) for name in ("production", "staging")]


def hours(env) -> list[tuple]:
    return list(
        EnvironmentHour.objects.filter(environment=env).order_by("hour").values_list("hour", "ran", "succeeded")
    )


def rollup_rows(org) -> tuple[list, list, list]:
    """Every rollup row of `org` with its id: a row deleted and written again shows as changed."""
    return (
        list(EnvironmentHour.objects.filter(org=org).order_by("pk").values_list()),
        list(EnvironmentDay.objects.filter(org=org).order_by("pk").values_list()),
        list(EnvironmentIncident.objects.filter(org=org).order_by("pk").values_list()),
    )


def bulk_deploys(env, trigger, *, since, until, count: int, seed: int) -> list[Job]:
    """`count` deploys finished between `since` and `until`, bulk-inserted: no signal, no receiver."""
    rng = random.Random(seed)
    span = (until - since).total_seconds()
    jobs = []
    for _ in range(count):
        fields = deploy_fields(
            env,
            trigger,
            finished=since + timedelta(seconds=rng.uniform(0, span)),
            status=JobStatus.FAILED if rng.random() < 0.25 else JobStatus.SUCCEEDED,
            running=rng.uniform(30, 900),
            commit_time=None,
        )
        job = Job(trigger_name=trigger.name, workflow=trigger.workflow, **fields)
        job.fill_short_id()
        jobs.append(job)
    return Job.objects.bulk_create(jobs)


@pytest.mark.django_db(transaction=True)
def test_a_saved_deploy_reaches_the_rollup_at_its_commit_and_never_when_rolled_back(org_a, now):
    env, trigger = Environment.objects.create(org=org_a, name="production"), TriggerFactory(org=org_a)
    hour = (now - 2 * H).replace(minute=0, second=0)
    good, bad = hour + timedelta(minutes=10), hour + timedelta(minutes=20)
    JobFactory(**deploy_fields(env, trigger, finished=good))  # autocommit: counted at once
    assert hours(env) == [(hour, 1, 1)]

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), transaction.atomic():
        JobFactory(**deploy_fields(env, trigger, finished=bad, status=JobStatus.FAILED))
        assert hours(env) == [(hour, 1, 1)]  # nothing done inside the saver's transaction
        raise Abandoned
    assert Job.objects.filter(environment=env).count() == 1
    assert hours(env) == [(hour, 1, 1)] and not EnvironmentIncident.objects.filter(environment=env).exists()

    with transaction.atomic():
        JobFactory(**deploy_fields(env, trigger, finished=bad, status=JobStatus.FAILED))
        assert hours(env) == [(hour, 1, 1)]
    assert hours(env) == [(hour, 2, 1)]
    assert EnvironmentIncident.objects.filter(environment=env, restored_at=None).count() == 1


def test_a_save_whose_rollup_recompute_fails_is_saved_and_logged(envs, now, monkeypatch, caplog):
    env, trigger = envs[0], TriggerFactory(org=envs[0].org)

    def broken(**kwargs):
        raise RuntimeError("the rollup's statement failed")

    monkeypatch.setattr(rollup, "rollup_recompute", broken)
    with caplog.at_level(logging.ERROR, logger="insights.receivers"):
        job = deploy(env, trigger, finished=now - 3 * H)
    assert Job.objects.filter(pk=job.pk, status=JobStatus.SUCCEEDED).exists()
    assert hours(env) == []
    (record,) = [r for r in caplog.records if r.name == "insights.receivers"]
    assert str(job.pk) in record.getMessage() and record.exc_info[0] is RuntimeError

    # What it left stale, the reconcile repairs once recomputing works again.
    monkeypatch.undo()
    assert rollup_reconcile() == Reconciled(stale=1, repaired=1)
    assert hours(env) == [((now - 3 * H).replace(minute=0, second=0), 1, 1)]


def test_writes_past_the_receivers_are_in_the_rollup_after_one_reconcile_run(envs, org_a, now, monkeypatch):
    trigger = TriggerFactory(org=org_a)
    for seed, env in enumerate(envs):
        history(env, now, days=5, seed=seed)
    for seed, env in enumerate(envs):
        bulk_deploys(env, trigger, since=now - 47 * H, until=now - H, count=25, seed=10 + seed)
    # An update and a delete that send no signal either.
    recent = Job.objects.filter(environment=envs[0], status=JobStatus.SUCCEEDED, finished_at__gte=now - 40 * H)
    assert recent.filter(pk=recent.order_by("finished_at").values("pk")[:1]).update(status=JobStatus.FAILED) == 1
    recent.filter(pk=recent.order_by("-finished_at").values("pk")[:1]).delete()
    ids = [env.pk for env in envs]
    direct = direct_answers(monkeypatch, org_a.pk, ids, now)
    assert answers(org_a.pk, ids, now)[("7d", ids[0])]["current"] != direct[("7d", ids[0])]["current"]

    assert insights_rollup_reconcile.apply().get() == {"stale": 2, "repaired": 2}
    assert_same(answers(org_a.pk, ids, now), direct)
    assert insights_rollup_reconcile.apply().get() == {"stale": 0, "repaired": 0}


def test_a_reconcile_with_nothing_to_fix_is_one_read_and_writes_nothing(envs, org_a, now, django_assert_num_queries):
    history(envs[0], now, days=4, seed=5)
    deploy(envs[1], TriggerFactory(org=org_a), finished=now - 5 * H, status=JobStatus.FAILED)
    before = rollup_rows(org_a)
    assert len(before[0]) > 10 and before[2]
    with django_assert_num_queries(1):
        assert rollup_reconcile() == Reconciled(stale=0, repaired=0)
    assert rollup_rows(org_a) == before


def test_the_embedded_beat_runs_the_reconcile_every_five_minutes(envs, org_a, now):
    entry = settings.CELERY_BEAT_SCHEDULE["insights-rollup-reconcile"]
    assert (entry["task"], entry["schedule"]) == (insights_rollup_reconcile.name, 300.0)
    bulk_deploys(envs[0], TriggerFactory(org=org_a), since=now - 3 * H, until=now - 2 * H, count=3, seed=1)
    call_command("embedded_beat", "--once")
    assert sum(ran for _, ran, _ in hours(envs[0])) == 3


def test_rollup_rebuild_rebuilds_an_org_s_environments_after_old_bulk_writes(envs, org_a, org_b, now, monkeypatch):
    trigger = TriggerFactory(org=org_a)
    history(envs[0], now, days=3, seed=2)
    # Too old for the reconcile's 48 hours.
    bulk_deploys(envs[1], trigger, since=now - 20 * D, until=now - 10 * D, count=30, seed=3)
    other = Environment.objects.create(org=org_b, name="production")
    bulk_deploys(other, TriggerFactory(org=org_b), since=now - 20 * D, until=now - 10 * D, count=5, seed=4)
    assert rollup_reconcile() == Reconciled(stale=0, repaired=0)

    out = io.StringIO()
    call_command("rollup_rebuild", "--org", org_a.slug, stdout=out)
    assert "Rebuilt the DORA rollup of 2 environment(s)." in out.getvalue()
    ids = [env.pk for env in envs]
    assert_same(answers(org_a.pk, ids, now), direct_answers(monkeypatch, org_a.pk, ids, now))
    assert hours(other) == []  # another org's environment is left alone

    call_command("rollup_rebuild", stdout=out)
    assert f"Rebuilt the DORA rollup of {Environment.objects.count()} environment(s)." in out.getvalue()
    assert sum(ran for _, ran, _ in hours(other)) == 5


def test_rollup_rebuild_rejects_an_unknown_org(envs):
    with pytest.raises(CommandError, match="No organization with the slug 'nope'"):
        call_command("rollup_rebuild", "--org", "nope")
