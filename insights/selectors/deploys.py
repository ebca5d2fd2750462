"""The four DORA measures per environment, over a window and the window before it.

- Deployment frequency: succeeded deploys.
- Change failure rate: deploys that ran and failed, or succeeded and were rolled back within a day
  (a rollback of it, `rollback_of`, was asked for within a day of it finishing and not refused),
  over every deploy that ran (succeeded or failed). A job cancelled before it ran (rejected,
  superseded, timed out waiting for approval) or stopped by a person is no deploy's outcome.
- Time to restore: from the first bad deploy after a good one to the environment's next good
  succeeded deploy; an incident not restored yet stays open (counted, with the time it began).
- Lead time: from the run request to success, split into waiting for approval (request →
  approved), waiting to run (→ claimed by an agent: the environment's queue and the agents') and
  running (→ finished), which add up to it; and from the commit when the request said
  (`commitTime`). Means, so the three parts add up to the whole.

All of it is one SQL statement over the environment's finished deploys (a partial index holds
exactly those), aggregated per chart bucket in the database: the answer's size and cost follow
the window's deploys, never the org's whole history.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils.dateparse import parse_datetime

from triggers.models import Job

from ..windows import Window

#: A succeeded deploy rolled back (a rollback of it asked for) this soon after it finished counts as failed.
ROLLBACK_WITHIN = timedelta(days=1)


@dataclass
class Totals:
    """One span's numbers (a bucket, a window)."""

    ran: int = 0
    succeeded: int = 0
    failures: int = 0
    lead_seconds: float = 0.0  # sums over succeeded deploys; means are properties
    approval_seconds: float = 0.0
    queue_seconds: float = 0.0
    running_seconds: float = 0.0
    commit_count: int = 0
    commit_seconds: float = 0.0
    incidents: int = 0
    restored: int = 0
    restore_seconds: float = 0.0

    def add(self, other: Totals) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def _mean(self, total: float, count: int) -> float | None:
        return total / count if count else None

    @property
    def change_failure_rate(self) -> float | None:
        return self._mean(self.failures, self.ran)

    @property
    def lead_mean_seconds(self) -> float | None:
        return self._mean(self.lead_seconds, self.succeeded)

    @property
    def approval_mean_seconds(self) -> float | None:
        return self._mean(self.approval_seconds, self.succeeded)

    @property
    def queue_mean_seconds(self) -> float | None:
        return self._mean(self.queue_seconds, self.succeeded)

    @property
    def running_mean_seconds(self) -> float | None:
        return self._mean(self.running_seconds, self.succeeded)

    @property
    def commit_lead_mean_seconds(self) -> float | None:
        return self._mean(self.commit_seconds, self.commit_count)

    @property
    def restore_mean_seconds(self) -> float | None:
        return self._mean(self.restore_seconds, self.restored)


@dataclass
class EnvironmentDeploys:
    environment_id: uuid.UUID
    current: Totals = field(default_factory=Totals)
    previous: Totals = field(default_factory=Totals)
    buckets: list[Totals] = field(default_factory=list)
    open_since: datetime | None = None  # the start of an incident not restored yet


def deploys_by_environment(
    *, org_id: uuid.UUID, environment_ids: list[uuid.UUID], window: Window
) -> dict[uuid.UUID, EnvironmentDeploys]:
    """Each environment's DORA numbers over `window`, its previous window and its chart buckets (one query)."""
    out = {
        env_id: EnvironmentDeploys(env_id, buckets=[Totals() for _ in range(window.bucket_count)])
        for env_id in environment_ids
    }
    if not environment_ids:
        return out
    sql, params = _statement(org_id=org_id, environment_ids=environment_ids, window=window)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    for kind, env_id, bucket, *values in rows:
        env = out.get(_uuid(env_id))
        if env is None:
            continue
        if kind == "d":
            ran, succeeded, failures, lead, approval, queue, running, commit_count, commit = values[:9]
            # Counts come back as int or Decimal (a SUM of bigints is numeric in PostgreSQL).
            totals = Totals(
                ran=int(ran),
                succeeded=int(succeeded or 0),
                failures=int(failures or 0),
                lead_seconds=float(lead or 0),
                approval_seconds=float(approval or 0),
                queue_seconds=float(queue or 0),
                running_seconds=float(running or 0),
                commit_count=int(commit_count or 0),
                commit_seconds=float(commit or 0),
            )
        else:
            incidents, restored, restore, open_since = *values[:3], values[9]
            totals = Totals(incidents=int(incidents), restored=int(restored or 0), restore_seconds=float(restore or 0))
            if open_since is not None:
                env.open_since = _datetime(open_since)
        bucket = int(bucket)
        if bucket < 0:
            env.previous.add(totals)
        else:
            env.buckets[bucket].add(totals)
            env.current.add(totals)
    return out


# Per database: seconds between two timestamps, and a non-negative number rounded up (SQLite, the
# embedded default, has no CEIL without its math extension; its CAST truncates).
_SQL_DIALECT = {
    "postgresql": ("EXTRACT(EPOCH FROM ({a} - {b}))", "CEIL({x})"),
    "sqlite": (
        "((julianday({a}) - julianday({b})) * 86400.0)",
        "(CAST({x} AS INTEGER) + ({x} > CAST({x} AS INTEGER)))",
    ),
}


def _statement(*, org_id: uuid.UUID, environment_ids: list[uuid.UUID], window: Window) -> tuple[str, list]:
    seconds_sql, ceil_sql = _SQL_DIALECT.get(connection.vendor, _SQL_DIALECT["postgresql"])

    def secs(a: str, b: str) -> str:
        return seconds_sql.format(a=a, b=b)

    ops = connection.ops
    at = ops.adapt_datetimefield_value
    end, start, previous_start = at(window.end), at(window.start), at(window.previous_start)
    lookback = at(window.previous_start - ROLLBACK_WITHIN)
    bucket_seconds = window.bucket.total_seconds()
    count = window.bucket_count

    def bucket_of(column: str) -> str:
        # Bucket i is [end − (count − i) × bucket, end − (count − i − 1) × bucket), cut back from the
        # window's end (the first one starts at the window's start, so it may be short); -1 is the
        # previous window. As insights.windows.Window.bucket_of.
        buckets_back = ceil_sql.format(x=secs("%s", column) + f" / {bucket_seconds}")
        return f"CASE WHEN {column} >= %s THEN {count} - {buckets_back} ELSE -1 END"

    table = Job._meta.db_table
    env_list = ", ".join(["%s"] * len(environment_ids))
    env_params = [_db_uuid(pk) for pk in environment_ids]
    good = "(status = 'succeeded' AND bad = 0)"
    # Only the model's table name, placeholder lists and fixed snippets are put in the text; values are %s parameters.
    sql = f"""
WITH ran AS (
    SELECT environment_id AS env, id, status, created_at, approved_at, claimed_at, finished_at, commit_time,
           rollback_of_id
    FROM {table}
    WHERE org_id = %s AND environment_id IN ({env_list}) AND status IN ('succeeded', 'failed')
      AND finished_at >= %s AND finished_at < %s
),
rolled_back AS (
    -- Deploys a rollback was asked for within a day of (a refused one, cancelled before it ran, aside).
    SELECT DISTINCT ran.id
    FROM ran JOIN {table} r ON r.rollback_of_id = ran.id
    WHERE ran.status = 'succeeded' AND r.org_id = %s AND {secs("r.created_at", "ran.finished_at")} <= %s
      AND NOT (r.status = 'cancelled' AND r.claimed_at IS NULL)
),
marked AS (
    SELECT ran.*,
           CASE WHEN ran.status = 'failed' OR rb.id IS NOT NULL THEN 1 ELSE 0 END AS bad
    FROM ran LEFT JOIN rolled_back rb ON rb.id = ran.id
),
runs AS (
    -- grp: how many good deploys up to this one; an incident's bad deploys share the grp of the
    -- good deploy before them, and the good deploy that restores it opens grp + 1.
    SELECT marked.*, SUM(CASE WHEN {good} THEN 1 ELSE 0 END) OVER (
        PARTITION BY env ORDER BY finished_at, id ROWS UNBOUNDED PRECEDING) AS grp
    FROM marked
),
incidents AS (
    SELECT env, grp, MIN(CASE WHEN bad = 1 THEN finished_at END) AS broken_at FROM runs GROUP BY env, grp
),
restores AS (
    SELECT i.env, i.broken_at, r.finished_at AS restored_at
    FROM incidents i LEFT JOIN runs r ON r.env = i.env AND r.grp = i.grp + 1 AND r.status = 'succeeded' AND r.bad = 0
    WHERE i.broken_at >= %s
)
SELECT 'd', env, {bucket_of("finished_at")} AS bucket,
       COUNT(*),
       SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END),
       SUM(bad),
       SUM(CASE WHEN status = 'succeeded' THEN {secs("finished_at", "created_at")} END),
       SUM(CASE WHEN status = 'succeeded' AND approved_at IS NOT NULL THEN {secs("approved_at", "created_at")} END),
       SUM(CASE WHEN status = 'succeeded' THEN {secs("claimed_at", "COALESCE(approved_at, created_at)")} END),
       SUM(CASE WHEN status = 'succeeded' THEN {secs("finished_at", "claimed_at")} END),
       SUM(CASE WHEN status = 'succeeded' AND commit_time <= created_at THEN 1 ELSE 0 END),
       SUM(CASE WHEN status = 'succeeded' AND commit_time <= created_at THEN {secs("finished_at", "commit_time")} END),
       NULL
FROM runs WHERE finished_at >= %s
GROUP BY env, bucket
UNION ALL
SELECT 'i', env, {bucket_of("broken_at")} AS bucket,
       COUNT(*),
       SUM(CASE WHEN restored_at IS NOT NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN restored_at IS NOT NULL THEN {secs("restored_at", "broken_at")} END),
       NULL, NULL, NULL, NULL, NULL, NULL,
       MIN(CASE WHEN restored_at IS NULL THEN broken_at END)
FROM restores
GROUP BY env, bucket
"""  # noqa: S608  # nosec B608
    # In the order the placeholders appear above.
    params = [
        _db_uuid(org_id),
        *env_params,
        lookback,
        end,
        _db_uuid(org_id),
        ROLLBACK_WITHIN.total_seconds(),
        previous_start,
        start,
        end,
        previous_start,
        start,
        end,
    ]
    return sql, params


def _db_uuid(value: uuid.UUID):
    # PostgreSQL takes a UUID; SQLite stores Django's UUIDField as 32 hex characters.
    return value if connection.vendor == "postgresql" else uuid.UUID(str(value)).hex


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _datetime(value) -> datetime:
    # PostgreSQL answers a datetime; SQLite the text Django stored (UTC, without an offset).
    if isinstance(value, datetime):
        return value
    parsed = parse_datetime(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
