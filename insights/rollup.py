"""Keeping the DORA rollup (insights.models) equal to what the jobs say.

Every change recomputes what it can touch from the jobs themselves, so running it twice, late or
out of order gives the same rows:

- a deploy's hour (its counts and sums), and, for a corrected result, every hour from its claim to
  its new finish (the old finish lies between);
- the incidents from the environment's last good deploy before the change to its first good one
  after it (a deploy turning bad or good can start, split, join or end incidents only there);
- for a rollback asked for or refused, the same for the deploy it rolls back (rolled back within a
  day, a succeeded deploy counts as failed).

Each runs after the change commits (insights.receivers); what one missed (it failed, or the jobs were
written past the receivers) insights.reconcile finds and recomputes, and `manage.py rollup_rebuild`
rebuilds. Concurrent changes of one environment take turns (a transaction-scoped advisory lock), so the
later one reads the earlier one's committed jobs. PostgreSQL only: on another database the
selectors compute from the jobs directly (insights.selectors.deploys).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import connection, transaction

from triggers.models import Environment, Job

from .models import EnvironmentDay, EnvironmentHour, EnvironmentIncident

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
_LOCK_NAMESPACE = 24  # issue 24: the first key of this module's advisory locks
_JOB = Job._meta.db_table
_HOURS = EnvironmentHour._meta.db_table
_DAYS = EnvironmentDay._meta.db_table
_SUMS = (
    "ran, succeeded, failures, lead_seconds, approval_seconds, queue_seconds, running_seconds, commit_count, "
    "commit_seconds"
)
_INCIDENTS = EnvironmentIncident._meta.db_table
# A deploy `j` counts as bad: it failed, or a rollback of it (not refused: cancelled before it ran)
# was asked for within a day of its finish. As insights.selectors.deploys computes it.
BAD_SQL = f"""(j.status = 'failed' OR EXISTS (
    SELECT 1 FROM {_JOB} r WHERE r.rollback_of_id = j.id AND NOT (r.status = 'cancelled' AND r.claimed_at IS NULL)
      AND r.created_at - j.finished_at <= interval '1 day'))"""  # noqa: S608  # nosec B608


def rollup_enabled() -> bool:
    return connection.vendor == "postgresql"


def floor_hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def floor_day(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def rollup_job_changed(*, job_id: uuid.UUID, corrected: bool = False) -> None:
    """Recompute what job `job_id` counts in: its hour(s), its environment's incidents around it and,
    for a rollback, the same for the deploy it rolls back. `corrected`: its result and finish changed."""
    if not rollup_enabled():
        return
    fields = ("environment_id", "status", "created_at", "claimed_at", "finished_at", "rollback_of_id")
    job = Job.objects.filter(pk=job_id).values(*fields).first()
    if job is None:
        return
    changes: list[tuple[uuid.UUID, datetime, datetime]] = []
    if job["environment_id"] and job["finished_at"] and job["status"] in ("succeeded", "failed"):
        since = (job["claimed_at"] or job["created_at"]) if corrected else job["finished_at"]
        changes.append((job["environment_id"], min(since, job["finished_at"]), job["finished_at"]))
    if job["rollback_of_id"]:
        target = Job.objects.filter(pk=job["rollback_of_id"]).values("environment_id", "finished_at").first()
        if target and target["environment_id"] and target["finished_at"]:
            changes.append((target["environment_id"], target["finished_at"], target["finished_at"]))
    with transaction.atomic():
        for environment_id, since, until in changes:
            rollup_recompute(environment_id=environment_id, since=since, until=until)


def rollup_rebuild(*, org_id: uuid.UUID | None = None) -> int:
    """Recompute every environment's rollup (of one org, or all) from its whole history; the count of
    environments. The backfill, and the repair after writes that bypass the receivers (bulk inserts)."""
    if not rollup_enabled():
        return 0
    environments = Environment.objects.order_by("pk")
    if org_id is not None:
        environments = environments.filter(org_id=org_id)
    count = 0
    for environment_id in environments.values_list("pk", flat=True).iterator():
        with transaction.atomic():
            rollup_recompute(environment_id=environment_id, since=None, until=None)
        count += 1
    if org_id is None:
        # Fresh statistics for the new rows (the backfill fills empty tables), as autovacuum would keep them.
        with connection.cursor() as cursor:
            for table in (_HOURS, _DAYS, _INCIDENTS):
                cursor.execute(f"ANALYZE {table}")
    return count


def rollup_recompute(*, environment_id: uuid.UUID, since: datetime | None, until: datetime | None) -> None:
    """Recompute the hours of [since, until] (None: unbounded) and the incidents that a change of the
    deploys finished then can touch; the caller holds a transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, _lock_key(environment_id)])
        _recompute_hours(cursor, environment_id, since, until)
        _recompute_days(cursor, environment_id, since, until)
        _recompute_incidents(cursor, environment_id, since, until)


def _lock_key(environment_id: uuid.UUID) -> int:
    return int.from_bytes(environment_id.bytes[:4], "big", signed=True)


def _range(column: str, since: datetime | None, until: datetime | None, *, until_op: str) -> tuple[str, list]:
    sql, params = "", []
    if since is not None:
        sql += f" AND {column} >= %s"
        params.append(since)
    if until is not None:
        sql += f" AND {column} {until_op} %s"
        params.append(until)
    return sql, params


def _recompute_hours(cursor, environment_id: uuid.UUID, since: datetime | None, until: datetime | None) -> None:
    first = floor_hour(since) if since else None
    last = floor_hour(until) if until else None
    where, params = _range("hour", first, last, until_op="<=")
    cursor.execute(f"DELETE FROM {_HOURS} WHERE environment_id = %s{where}", [environment_id, *params])  # noqa: S608  # nosec B608
    where, params = _range("j.finished_at", first, last + HOUR if last else None, until_op="<")

    def secs(a: str, b: str) -> str:
        return f"EXTRACT(EPOCH FROM ({a} - {b}))"

    ok = "j.status = 'succeeded'"
    commit = f"{ok} AND j.commit_time <= j.created_at"
    cursor.execute(
        f"""
INSERT INTO {_HOURS} (org_id, environment_id, hour, ran, succeeded, failures, lead_seconds, approval_seconds,
                      queue_seconds, running_seconds, commit_count, commit_seconds)
SELECT j.org_id, j.environment_id, date_trunc('hour', j.finished_at, 'UTC'), COUNT(*),
       COUNT(*) FILTER (WHERE {ok}),
       COUNT(*) FILTER (WHERE {BAD_SQL}),
       COALESCE(SUM({secs("j.finished_at", "j.created_at")}) FILTER (WHERE {ok}), 0),
       COALESCE(SUM({secs("j.approved_at", "j.created_at")}) FILTER (WHERE {ok} AND j.approved_at IS NOT NULL), 0),
       COALESCE(SUM({secs("j.claimed_at", "COALESCE(j.approved_at, j.created_at)")}) FILTER (WHERE {ok}), 0),
       COALESCE(SUM({secs("j.finished_at", "j.claimed_at")}) FILTER (WHERE {ok}), 0),
       COUNT(*) FILTER (WHERE {commit}),
       COALESCE(SUM({secs("j.finished_at", "j.commit_time")}) FILTER (WHERE {commit}), 0)
FROM {_JOB} j
WHERE j.environment_id = %s AND j.status IN ('succeeded', 'failed'){where}
GROUP BY j.org_id, j.environment_id, date_trunc('hour', j.finished_at, 'UTC')
""",  # noqa: S608  # nosec B608
        [environment_id, *params],
    )


def _recompute_days(cursor, environment_id: uuid.UUID, since: datetime | None, until: datetime | None) -> None:
    first = floor_day(since) if since else None
    last = floor_day(until) if until else None
    where, params = _range("day", first, last, until_op="<=")
    cursor.execute(f"DELETE FROM {_DAYS} WHERE environment_id = %s{where}", [environment_id, *params])  # noqa: S608  # nosec B608
    where, params = _range("hour", first, last + DAY if last else None, until_op="<")
    sums = ", ".join(f"SUM({name})" for name in _SUMS.split(", "))
    cursor.execute(
        f"""INSERT INTO {_DAYS} (org_id, environment_id, day, {_SUMS})
SELECT org_id, environment_id, date_trunc('day', hour, 'UTC'), {sums}
FROM {_HOURS} WHERE environment_id = %s{where}
GROUP BY org_id, environment_id, date_trunc('day', hour, 'UTC')""",  # noqa: S608  # nosec B608
        [environment_id, *params],
    )


def _good_edge(cursor, environment_id: uuid.UUID, at: datetime, *, before: bool) -> datetime | None:
    """The finish of the environment's last good deploy before `at` (or its first one after)."""
    op, order = ("<", "DESC") if before else (">", "ASC")
    cursor.execute(
        f"""SELECT j.finished_at FROM {_JOB} j
WHERE j.environment_id = %s AND j.status = 'succeeded' AND j.finished_at {op} %s AND NOT {BAD_SQL}
ORDER BY j.finished_at {order} LIMIT 1""",  # noqa: S608  # nosec B608
        [environment_id, at],
    )
    row = cursor.fetchone()
    return row[0] if row else None


def _recompute_incidents(cursor, environment_id: uuid.UUID, since: datetime | None, until: datetime | None) -> None:
    # Before the last good deploy and after the first good one, nothing this change can touch.
    start = _good_edge(cursor, environment_id, since, before=True) if since else None
    end = _good_edge(cursor, environment_id, until, before=False) if until else None
    where, params = _range("started_at", start, end, until_op="<=")
    cursor.execute(f"DELETE FROM {_INCIDENTS} WHERE environment_id = %s{where}", [environment_id, *params])  # noqa: S608  # nosec B608
    where, params = _range("j.finished_at", start, end, until_op="<=")
    cursor.execute(
        f"""SELECT j.org_id, j.finished_at, {BAD_SQL} FROM {_JOB} j
WHERE j.environment_id = %s AND j.status IN ('succeeded', 'failed'){where}
ORDER BY j.finished_at, j.id""",  # noqa: S608  # nosec B608
        [environment_id, *params],
    )
    incidents: list[EnvironmentIncident] = []
    open_incident: EnvironmentIncident | None = None
    # Bounded by the span between two good deploys (the whole history only for a rebuild).
    for org_id, finished_at, bad in cursor.fetchall():
        if bad and open_incident is None:
            open_incident = EnvironmentIncident(org_id=org_id, environment_id=environment_id, started_at=finished_at)
            incidents.append(open_incident)
        elif not bad and open_incident is not None:
            open_incident.restored_at = finished_at
            open_incident = None
    EnvironmentIncident.objects.bulk_create(incidents, batch_size=1000)
