"""Schedule writes (create, update, delete, with their audit rows) and firing: the beat's tick
(`schedules_fire_due`) and the one function that turns a fire into a job (`schedule_fire`).

Exactly once per (schedule, fire time), decided by the database, never by the broker:
- a tick takes due schedules with SELECT … FOR UPDATE SKIP LOCKED, so two ticks running at once
  (two beats started by mistake) never work on the same schedule at the same time;
- each fire first inserts its ScheduleFire row, unique on (schedule, fire_at), in the same
  transaction as its job: should two ticks still reach the same fire, the second finds the row
  taken and makes no job;
- next_fire_at only moves on when that transaction commits, so a tick that dies (beat restarted
  mid-minute) leaves the fire for the next one, and a broker that is down only delays the tick
  (a fire up to LATE_FIRE_GRACE late still runs; older ones follow the schedule's catch_up).
Every tick takes `now` as a parameter so tests control the clock instead of sleeping.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from deplite.errors import Conflict, DepliteError
from orgs.actors import Actor, ActorKind
from orgs.models import Membership
from orgs.services import audit_record

from ..models import JobSource, Trigger
from ..services import trigger_run
from . import cron as cron_rules
from .models import CatchUp, Schedule, ScheduleFire

logger = logging.getLogger(__name__)

# A fire this late or less (a broker hiccup, a restart) still runs, each such fire once.
LATE_FIRE_GRACE = timedelta(minutes=10)
# At most this many late fires of one schedule in one tick (a per-minute schedule late by the grace).
MAX_LATE_FIRES = 12
NEXT_FIRE_TIMES = 5
# Bounds what one trigger's schedules cost a tick and its page.
MAX_SCHEDULES_PER_TRIGGER = 20
# A tick takes due schedules in batches (one transaction each) until none is due, within bounds:
# what it leaves is due at the next tick, still within the grace or caught up.
TICK_BATCH = 200
TICK_MAX_BATCHES = 100
TICK_TIME_BUDGET_SECONDS = 20.0


def schedule_create(
    *,
    trigger: Trigger,
    actor: Actor,
    cron: str,
    timezone_name: str = "UTC",
    ref: str = "",
    params: dict[str, str] | None = None,
    enabled: bool = True,
    catch_up: str = CatchUp.LATEST,
    now: datetime | None = None,
) -> Schedule:
    """A new schedule of `trigger` (values checked by the API's ScheduleInput). Its jobs will be
    started by `actor`: the person, or the org token, creating it."""
    if Schedule.objects.filter(trigger=trigger).count() >= MAX_SCHEDULES_PER_TRIGGER:
        raise Conflict(
            f"A trigger has at most {MAX_SCHEDULES_PER_TRIGGER} schedules; delete one first.", code="too_many_schedules"
        )
    schedule = Schedule(
        org_id=trigger.org_id,
        trigger=trigger,
        cron=cron,
        timezone=timezone_name,
        ref=ref or "",
        params=dict(params or {}),
        enabled=enabled,
        catch_up=catch_up,
        created_by=actor.user,
        created_by_token=actor.token,
        **actor.stamp(),
    )
    schedule.next_fire_at = _next_fire(schedule, now or timezone.now())
    with transaction.atomic():
        schedule.save(force_insert=True)
        audit_record(
            org=trigger.org, actor=actor, action="schedule.created", target=schedule, data=_audit_data(schedule)
        )
    return schedule


def schedule_update(
    *,
    schedule: Schedule,
    actor: Actor,
    cron: str | None = None,
    timezone_name: str | None = None,
    ref: str | None = None,
    params: dict[str, str] | None = None,
    enabled: bool | None = None,
    catch_up: str | None = None,
    now: datetime | None = None,
) -> Schedule:
    """Change the given fields (None: leave as is). A new expression, timezone or re-enabling
    counts from now: fires missed while it was different (or disabled) are not caught up."""
    given = {
        "cron": cron,
        "timezone": timezone_name,
        "ref": ref,
        "params": params,
        "enabled": enabled,
        "catch_up": catch_up,
    }
    changed = {k: v for k, v in given.items() if v is not None and getattr(schedule, k) != v}
    if not changed:
        return schedule
    with transaction.atomic():
        # Locked so a tick firing it right now finishes first (and this sees its next_fire_at).
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        for field, value in changed.items():
            setattr(locked, field, value)
        if changed.keys() & {"cron", "timezone", "enabled"}:
            locked.next_fire_at = _next_fire(locked, now or timezone.now())
        locked.save()
        audit_record(
            org=locked.org,
            actor=actor,
            action="schedule.updated",
            target=locked,
            data={**_audit_data(locked), "fields": sorted(changed)},
        )
    return locked


def schedule_delete(*, schedule: Schedule, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(
            org=schedule.org, actor=actor, action="schedule.deleted", target=schedule, data=_audit_data(schedule)
        )
        schedule.delete()


def schedule_next_fire_times(schedule: Schedule, *, now: datetime | None = None) -> list[datetime]:
    """The next NEXT_FIRE_TIMES fire times in UTC (none while disabled)."""
    if not schedule.enabled:
        return []
    return cron_rules.fires_after(schedule.cron, schedule.timezone, now or timezone.now(), NEXT_FIRE_TIMES)


def schedule_description(schedule: Schedule) -> str:
    return cron_rules.describe(schedule.cron, schedule.timezone)


def schedules_fire_due(*, now: datetime | None = None, batch_size: int = TICK_BATCH) -> int:
    """The beat's tick: fire every enabled schedule whose next_fire_at has come; the number of jobs made.

    Each batch is one transaction holding its schedules' row locks (SKIP LOCKED: another tick
    takes other rows or none), read through the partial index on next_fire_at.
    """
    now = now or timezone.now()
    started = time.monotonic()
    made = 0
    members: dict[tuple, bool] = {}  # (org, user) → member, for this tick: schedules share their creators
    for _ in range(TICK_MAX_BATCHES):
        with transaction.atomic():
            due = list(
                Schedule.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(enabled=True, next_fire_at__lte=now)
                .select_related("trigger__org", "created_by", "created_by_token")
                .order_by("next_fire_at")[:batch_size]
            )
            # A fire of a trigger with an environment locks the environment's row until the batch commits:
            # taken in one order (by environment id) by every tick, two ticks may wait for each other but never deadlock.
            for schedule in sorted(due, key=lambda s: str(s.trigger.environment_id or "")):
                made += _schedule_catch_up(schedule=schedule, now=now, members=members)
            if due:  # one UPDATE for the batch's next_fire_at and last_* fields
                Schedule.objects.bulk_update(due, ["next_fire_at", "last_fire_at", "last_job", "last_error"])
        if len(due) < batch_size or time.monotonic() - started > TICK_TIME_BUDGET_SECONDS:
            break
    return made


def _schedule_catch_up(*, schedule: Schedule, now: datetime, members: dict) -> int:
    """Fire what is due of one (locked) schedule and move its next_fire_at past `now` (in memory:
    the caller saves the batch).

    Fires within LATE_FIRE_GRACE of `now` run, each once. Older missed ones run only with
    catch_up `latest` and only if no later fire runs: then the latest of them, once.
    """
    first_due = schedule.next_fire_at
    cutoff = now - LATE_FIRE_GRACE
    to_fire = cron_rules.fires_between(schedule.cron, schedule.timezone, max(first_due, cutoff), now, MAX_LATE_FIRES)
    if not to_fire and first_due < cutoff and schedule.catch_up == CatchUp.LATEST:
        latest = cron_rules.latest_fire_before(schedule.cron, schedule.timezone, cutoff)
        if latest is not None and latest >= first_due:
            to_fire = [latest]
    made = 0
    for fire_at in to_fire:
        made += schedule_fire(schedule=schedule, fire_at=fire_at, members=members) is not None
    schedule.next_fire_at = cron_rules.next_fire_after(schedule.cron, schedule.timezone, now)
    return made


def schedule_fire(*, schedule: Schedule, fire_at: datetime, members: dict | None = None) -> uuid.UUID | None:
    """Make the job of one (schedule, fire time), at most once; the job's id, or None when the fire
    was refused (the reason goes on the schedule and its fire row) or had already happened.

    Run inside the tick's transaction: the fire row, the job and the schedule's new next_fire_at
    commit together. The job goes through `trigger_run` like any run (enabled check, input files,
    dispatch, audit), started by the schedule's creator. Sets the schedule's last_* fields in
    memory; the caller saves them.
    """
    fire_id = _claim_fire(schedule=schedule, fire_at=fire_at)
    if fire_id is None:
        logger.info("Schedule %s already fired for %s; skipped.", schedule.pk, fire_at.isoformat())
        return None
    actor, error = _fire_actor(schedule, {} if members is None else members)
    job_id = None
    if actor is not None:
        try:
            result = trigger_run(
                trigger=schedule.trigger,
                actor=actor,
                source=JobSource.SCHEDULE,
                ref=schedule.ref or None,
                params=dict(schedule.params),
                # A locked environment does not refuse a fire: the job is made and ends cancelled with the
                # lock's reason, so the miss shows in the job list and its notification (issue 23).
                record_lock=True,
            )
            job_id = result.job_id
        except DepliteError as exc:
            # A refusal decided before any write (the trigger is disabled, an input file is gone): kept on the
            # fire row and shown on the schedule. Database errors are not DepliteErrors: they end the tick's
            # transaction and the next tick tries again.
            error = exc.message
    ScheduleFire.objects.filter(pk=fire_id).update(job_id=job_id, error=error[:500])
    if error:
        logger.warning("Schedule %s fire at %s made no job: %s", schedule.pk, fire_at.isoformat(), error)
    schedule.last_fire_at, schedule.last_job_id, schedule.last_error = fire_at, job_id, error[:500]
    return job_id


def _claim_fire(*, schedule: Schedule, fire_at: datetime) -> int | None:
    """Insert the (schedule, fire_at) row unless it exists: its id, or None when another tick has it.

    ON CONFLICT DO NOTHING (PostgreSQL, SQLite): the unique constraint decides in one statement,
    where an ORM insert would need a savepoint around it to survive the IntegrityError.
    """
    meta = ScheduleFire._meta
    table = connection.ops.quote_name(meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            # Constant SQL (the table name from the model); every value is a parameter.
            f"INSERT INTO {table} (org_id, schedule_id, fire_at, error, created_at) "  # noqa: S608  # nosec B608
            "VALUES (%s, %s, %s, '', %s) ON CONFLICT (schedule_id, fire_at) DO NOTHING RETURNING id",
            [
                meta.get_field("org").target_field.get_db_prep_value(schedule.org_id, connection),
                meta.get_field("schedule").target_field.get_db_prep_value(schedule.pk, connection),
                meta.get_field("fire_at").get_db_prep_value(fire_at, connection),
                meta.get_field("created_at").get_db_prep_value(timezone.now(), connection),
            ],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _fire_actor(schedule: Schedule, members: dict) -> tuple[Actor | None, str]:
    """Who starts the schedule's jobs: its creator, as long as they may (else None and why not)."""
    if schedule.actor_kind == ActorKind.TOKEN:
        token = schedule.created_by_token
        if token is None or not token.is_active:
            return None, f"The API token that created this schedule ({schedule.actor_label}) was revoked or expired."
        if token.created_by_id is not None and not _is_member(members, schedule.org_id, token.created_by_id):
            return None, f"The creator of the API token {schedule.actor_label} is no longer a member."
        label = f"{token.name} ({token.prefix}…)"
        return Actor(kind=ActorKind.TOKEN, id=str(token.id), label=label, token=token), ""
    user = schedule.created_by
    if user is None or not user.is_active or not _is_member(members, schedule.org_id, user.pk):
        return (
            None,
            f"{schedule.actor_label or 'The creator of this schedule'} is no longer a member of this organization.",
        )
    return Actor.for_user(user), ""


def _is_member(members: dict, org_id: uuid.UUID, user_id: Any) -> bool:
    key = (org_id, user_id)
    if key not in members:
        members[key] = Membership.objects.filter(org_id=org_id, user_id=user_id).exists()
    return members[key]


def _next_fire(schedule: Schedule, now: datetime) -> datetime | None:
    if not schedule.enabled:
        return None
    return cron_rules.next_fire_after(schedule.cron, schedule.timezone, now)


def _audit_data(schedule: Schedule) -> dict:
    return {
        "trigger": str(schedule.trigger_id),
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
    }
