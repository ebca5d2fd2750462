"""Schedules firing: exactly once per (schedule, fire time), late fires, catchUp, DST, and the
creator's rights. The clock is the tick's `now` parameter: no test sleeps or waits on beat."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from orgs.models import Membership, Role
from triggers import tasks
from triggers.models import Job, JobSource, JobStatus, Schedule, ScheduleFire
from triggers.schedules import cron, services

from ..factories import MembershipFactory, ScheduleFactory, TriggerFactory

pytestmark = pytest.mark.django_db


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _schedule(org, *, cron_expr="0 9 * * *", tz="UTC", next_fire_at=None, **fields) -> Schedule:
    schedule = ScheduleFactory(org=org, cron=cron_expr, timezone=tz, **fields)
    if next_fire_at is not None:
        Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=next_fire_at)
        schedule.refresh_from_db()
    return schedule


def _jobs(schedule) -> list[Job]:
    return list(Job.objects.filter(trigger=schedule.trigger, source=JobSource.SCHEDULE).order_by("created_at"))


def _fired_at(schedule) -> list[datetime]:
    return list(ScheduleFire.objects.filter(schedule=schedule).order_by("fire_at").values_list("fire_at", flat=True))


def test_a_due_fire_makes_one_queued_job_started_by_the_schedules_creator(org_a):
    schedule = _schedule(org_a, next_fire_at=utc(2026, 12, 7, 9), ref="release", params={"TARGET": "staging"})

    assert services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 20)) == 1

    [job] = _jobs(schedule)
    assert job.status == JobStatus.QUEUED and job.source == "schedule"
    assert (job.ref, job.params) == ("release", {"TARGET": "staging"})
    assert job.actor_kind == "user" and job.actor_label == schedule.created_by.email
    schedule.refresh_from_db()
    assert schedule.last_fire_at == utc(2026, 12, 7, 9) and schedule.last_job_id == job.pk
    assert schedule.next_fire_at == utc(2026, 12, 8, 9)
    assert _fired_at(schedule) == [utc(2026, 12, 7, 9)]


def test_a_schedule_without_a_ref_runs_the_triggers_default_ref(org_a):
    schedule = _schedule(org_a, next_fire_at=utc(2026, 12, 7, 9))
    schedule.trigger.default_ref = "develop"
    schedule.trigger.save()
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 5))
    assert [j.ref for j in _jobs(schedule)] == ["develop"]


def test_ticks_repeated_within_the_minute_fire_once(org_a):
    """Beat restarted mid-minute runs its first tick again at once: nothing fires twice."""
    schedule = _schedule(org_a, next_fire_at=utc(2026, 12, 7, 9))
    for second in (1, 15, 30, 45, 59):
        services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, second))
    assert len(_jobs(schedule)) == 1


def test_a_tick_that_dies_before_committing_leaves_the_fire_to_the_next_tick(org_a):
    """A beat killed mid-tick: its transaction never commits, so neither the job nor the move of
    next_fire_at happened, and the next tick (the restarted beat) fires it, once."""
    schedule = _schedule(org_a, next_fire_at=utc(2026, 12, 7, 9))

    class Killed(Exception):
        pass

    with pytest.raises(Killed), transaction.atomic():
        services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 10))
        raise Killed
    assert _jobs(schedule) == []
    assert Schedule.objects.get(pk=schedule.pk).next_fire_at == utc(2026, 12, 7, 9)

    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 40))
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 55))
    assert len(_jobs(schedule)) == 1


def test_the_fire_row_refuses_a_second_job_for_the_same_fire(org_a):
    """The database's backstop under SKIP LOCKED: the same (schedule, fire time) twice makes one job,
    and the loser's job is undone with its fire row."""
    schedule = _schedule(org_a, next_fire_at=utc(2026, 12, 7, 9))
    first = services.schedule_fire(schedule=schedule, fire_at=utc(2026, 12, 7, 9))
    second = services.schedule_fire(schedule=schedule, fire_at=utc(2026, 12, 7, 9))
    assert first is not None and second is None
    assert [j.pk for j in _jobs(schedule)] == [first]


def test_a_fire_up_to_ten_minutes_late_runs_once(org_a):
    schedule = _schedule(org_a, cron_expr="0 9 * * *", next_fire_at=utc(2026, 12, 7, 9))
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 9, 50))
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 10, 5))
    assert len(_jobs(schedule)) == 1
    assert _fired_at(schedule) == [utc(2026, 12, 7, 9)]


def test_each_fire_within_the_grace_runs_once_after_an_outage(org_a):
    """A per-minute schedule whose ticks stopped for three minutes: each of those fires runs, once."""
    schedule = _schedule(org_a, cron_expr="* * * * *", next_fire_at=utc(2026, 12, 7, 9, 1))
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 3, 30))
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 3, 45))
    assert _fired_at(schedule) == [utc(2026, 12, 7, 9, 1), utc(2026, 12, 7, 9, 2), utc(2026, 12, 7, 9, 3)]
    assert len(_jobs(schedule)) == 3


@pytest.mark.parametrize("catch_up", ["latest", "none"])
def test_fires_missed_by_more_than_ten_minutes_follow_catch_up(org_a, catch_up):
    """Hourly, last fired at 05:00, ticks stopped until 09:30 (06, 07, 08 and 09:00 all missed by
    more than ten minutes): `latest` runs 09:00 once, `none` runs nothing; both go on at 10:00."""
    schedule = _schedule(org_a, cron_expr="0 * * * *", next_fire_at=utc(2026, 12, 7, 6), catch_up=catch_up)
    made = services.schedules_fire_due(now=utc(2026, 12, 7, 9, 30))
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 45))

    if catch_up == "latest":
        assert made == 1 and _fired_at(schedule) == [utc(2026, 12, 7, 9)]
    else:
        assert made == 0 and _fired_at(schedule) == [] and _jobs(schedule) == []
    assert Schedule.objects.get(pk=schedule.pk).next_fire_at == utc(2026, 12, 7, 10)
    services.schedules_fire_due(now=utc(2026, 12, 7, 10, 0, 10))
    assert _fired_at(schedule)[-1] == utc(2026, 12, 7, 10)


def test_a_late_fire_within_the_grace_wins_over_older_missed_ones_either_way(org_a):
    """Missed 06:00–08:00 and 09:00 only five minutes late: 09:00 runs (it is within the grace),
    and it is the latest missed fire, so `latest` runs nothing more."""
    schedule = _schedule(org_a, cron_expr="0 * * * *", next_fire_at=utc(2026, 12, 7, 6), catch_up="latest")
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 5))
    assert _fired_at(schedule) == [utc(2026, 12, 7, 9)]


def test_a_disabled_schedule_never_fires_and_reenabling_counts_from_now(org_a, owner):
    from orgs.actors import Actor

    schedule = _schedule(org_a, cron_expr="0 * * * *", next_fire_at=utc(2026, 12, 7, 6))
    schedule = services.schedule_update(
        schedule=schedule, actor=Actor.for_user(owner), enabled=False, now=utc(2026, 12, 7, 5)
    )
    assert schedule.next_fire_at is None
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 5))
    assert _jobs(schedule) == []
    schedule = services.schedule_update(
        schedule=schedule, actor=Actor.for_user(owner), enabled=True, now=utc(2026, 12, 7, 9, 10)
    )
    assert schedule.next_fire_at == utc(2026, 12, 7, 10)  # 09:00 was missed while disabled: not caught up


def test_a_fire_of_a_disabled_trigger_makes_no_job_and_says_why(org_a):
    schedule = _schedule(org_a, next_fire_at=utc(2026, 12, 7, 9))
    schedule.trigger.enabled = False
    schedule.trigger.save()
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 5))
    schedule.refresh_from_db()
    assert _jobs(schedule) == []
    assert schedule.last_error == "This trigger is disabled." and schedule.last_job_id is None
    assert schedule.next_fire_at == utc(2026, 12, 8, 9)


def test_a_schedule_whose_creator_left_the_org_makes_no_job(org_a):
    schedule = _schedule(org_a, next_fire_at=utc(2026, 12, 7, 9))
    Membership.objects.filter(org=org_a, user=schedule.created_by).delete()
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 5))
    schedule.refresh_from_db()
    assert _jobs(schedule) == []
    assert "no longer a member" in schedule.last_error


def test_a_schedule_made_by_an_org_token_runs_as_the_token_until_it_is_revoked(org_a, api, org_token, owner):
    token, raw = org_token
    trigger = TriggerFactory(org=org_a)
    response = api.as_token(raw).post(
        f"/api/orgs/{org_a.slug}/triggers/{trigger.pk}/schedules", {"cron": "0 9 * * *"}, format="json"
    )
    assert response.status_code == 201, response.content
    schedule = Schedule.objects.get(pk=response.json()["id"])
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=utc(2026, 12, 7, 9))
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 5))
    [job] = _jobs(schedule)
    assert job.actor_kind == "token" and job.actor_id == str(token.pk)

    token.revoked_at = utc(2026, 12, 7, 10)
    token.save()
    services.schedules_fire_due(now=utc(2026, 12, 8, 9, 0, 5))
    assert len(_jobs(schedule)) == 1
    assert "revoked" in Schedule.objects.get(pk=schedule.pk).last_error


# --- daylight saving time, as cronsim defines it (README "Schedules") ---------------------------------------


def test_spring_forward_runs_a_time_that_does_not_exist_at_the_first_minute_after_it():
    """Berlin, 29 March 2026: 02:00 jumps to 03:00. `30 2 * * *` runs at 03:00 local that day, once."""
    times = cron.fires_after("30 2 * * *", "Europe/Berlin", utc(2026, 3, 27, 12), 3)
    assert times == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]


def test_fall_back_runs_a_fixed_time_that_happens_twice_once_at_its_first_occurrence():
    """Berlin, 25 October 2026: 03:00 goes back to 02:00, so 02:30 happens twice (CEST, then CET)."""
    times = cron.fires_after("30 2 * * *", "Europe/Berlin", utc(2026, 10, 23, 12), 3)
    assert times == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_fall_back_runs_a_repeating_expression_at_every_real_instant():
    """`*/30 * * * *` fires every half hour of real time: both 02:00 and both 02:30 of that night."""
    times = cron.fires_after("*/30 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23, 50), 5)
    assert times == [
        utc(2026, 10, 25, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1),
        utc(2026, 10, 25, 1, 30),
        utc(2026, 10, 25, 2),
    ]


def test_spring_forward_a_repeating_expression_follows_real_time():
    """`*/30 * * * *` on the spring-forward night: 01:30 CET, then 03:00 CEST (02:00 and 02:30 do not exist)."""
    times = cron.fires_after("*/30 * * * *", "Europe/Berlin", utc(2026, 3, 29, 0, 10), 3)
    assert times == [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30)]


@pytest.mark.parametrize(
    "expr,start,end,expected",
    [
        # Spring forward: one job at 03:00 CEST (01:00 UTC) on the 29th.
        ("30 2 * * *", utc(2026, 3, 28, 23), utc(2026, 3, 29, 3), [utc(2026, 3, 29, 1)]),
        # Fall back: one job at the first 02:30 (CEST, 00:30 UTC).
        ("30 2 * * *", utc(2026, 10, 24, 23), utc(2026, 10, 25, 3), [utc(2026, 10, 25, 0, 30)]),
        # Fall back, hourly at :30: both 02:30s, an hour apart.
        (
            "30 * * * *",
            utc(2026, 10, 24, 23, 45),
            utc(2026, 10, 25, 1, 45),
            [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)],
        ),
    ],
)
def test_ticks_across_a_dst_change_fire_as_cronsim_defines(org_a, expr, start, end, expected):
    """The real tick every 15 seconds of the night (the beat's interval), no sleeping: what fired."""
    first = cron.next_fire_after(expr, "Europe/Berlin", start)
    schedule = _schedule(org_a, cron_expr=expr, tz="Europe/Berlin", next_fire_at=first)
    now = start
    while now <= end:
        services.schedules_fire_due(now=now)
        now += timedelta(seconds=15)
    assert _fired_at(schedule) == expected
    assert len(_jobs(schedule)) == len(expected)


# --- the broker, and two beats ----------------------------------------------------------------------------


def test_a_fire_while_redis_is_unreachable_still_makes_exactly_one_job(
    org_a, settings, dead_broker, django_capture_on_commit_callbacks
):
    """Broker and Redis down at the fire time: the tick reads and writes PostgreSQL only. The job's
    wake-up, published after commit, fails against the dead Redis and the job stays, once (the
    queued-job sweeper wakes agents when Redis is back)."""
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # the discard port: nothing answers
    schedule = _schedule(org_a, next_fire_at=utc(2026, 12, 7, 9))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        made = services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 5))
    assert callbacks and made == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 35))
    [job] = _jobs(schedule)
    assert job.status == JobStatus.QUEUED
    assert any("Could not publish the wake-up" in r.getMessage() for r in dead_broker.records)


def test_the_beat_task_fires_due_schedules(org_a, monkeypatch):
    schedule = _schedule(org_a, next_fire_at=utc(2026, 12, 7, 9))
    monkeypatch.setattr(services.timezone, "now", lambda: utc(2026, 12, 7, 9, 0, 3))
    assert tasks.schedules_tick.apply().get() == 1
    assert len(_jobs(schedule)) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_ticks_at_once_make_one_job_per_fire(org_a):
    """Two beats started by mistake: two ticks in two threads (two connections) at the same instant."""
    schedules = [_schedule(org_a, next_fire_at=utc(2026, 12, 7, 9)) for _ in range(40)]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def tick():
        try:
            barrier.wait(timeout=30)
            results.append(services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 5), batch_size=7))
        except Exception as exc:  # reported below: a thread's exception would be lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(results) == 2
    assert sum(results) == 40
    for schedule in schedules:
        assert len(_jobs(schedule)) == 1
    assert ScheduleFire.objects.count() == 40


def test_a_member_role_is_enough_for_the_creator(org_a):
    """A schedule runs as its creator with the creator's role: a member may run triggers."""
    person = MembershipFactory(org=org_a, role=Role.MEMBER).user
    schedule = _schedule(org_a, next_fire_at=utc(2026, 12, 7, 9), created_by=person)
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 5))
    assert [j.actor_label for j in _jobs(schedule)] == [person.email]


# --- the trigger's environment rules ----------------------------------------------------------------------


def test_a_fire_under_an_environment_lock_makes_a_job_that_ends_cancelled_with_the_locks_reason(org_a, owner, member):
    from orgs.actors import Actor
    from triggers.environments import services as env_services
    from triggers.models import Environment

    production = Environment.objects.create(org=org_a, name="production")
    trigger = TriggerFactory(org=org_a, environment=production)
    schedule = _schedule(org_a, trigger=trigger, created_by=member, next_fire_at=utc(2026, 12, 7, 9))
    env_services.environment_lock(environment=production, actor=Actor.for_user(owner), reason="release freeze")

    assert services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 5)) == 1

    [job] = _jobs(schedule)
    assert job.status == JobStatus.CANCELLED
    assert job.error == "environment locked by owner@acme.test: 'release freeze'"
    assert Schedule.objects.get(pk=schedule.pk).last_job_id == job.pk


def test_a_fire_of_an_environment_with_approvals_waits_for_them(org_a, member):
    from triggers.models import Environment

    staging = Environment.objects.create(org=org_a, name="staging", required_approvals=1)
    trigger = TriggerFactory(org=org_a, environment=staging)
    schedule = _schedule(org_a, trigger=trigger, created_by=member, next_fire_at=utc(2026, 12, 7, 9))
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 5))
    assert [j.status for j in _jobs(schedule)] == [JobStatus.PENDING_APPROVAL]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_tick_skips_a_schedule_another_tick_holds_and_fires_it_once_released(org_a):
    """SKIP LOCKED, deterministically: while another connection (a second beat mid-tick) holds one
    schedule's row, a tick fires the others without waiting; once released, the held one fires once."""
    held = _schedule(org_a, next_fire_at=utc(2026, 12, 7, 9))
    free = _schedule(org_a, next_fire_at=utc(2026, 12, 7, 9))
    locked, release, errors = threading.Event(), threading.Event(), []

    def other_beat():
        try:
            with transaction.atomic():
                Schedule.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(timeout=60)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            locked.set()
            connection.close()

    thread = threading.Thread(target=other_beat)
    thread.start()
    try:
        assert locked.wait(timeout=60)
        assert services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 5)) == 1
        assert (len(_jobs(held)), len(_jobs(free))) == (0, 1)
    finally:
        release.set()
        thread.join(timeout=60)
    assert not errors
    assert services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 20)) == 1
    services.schedules_fire_due(now=utc(2026, 12, 7, 9, 0, 35))
    assert (len(_jobs(held)), len(_jobs(free))) == (1, 1)
