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

On PostgreSQL it is one statement over the rollup (insights.models, kept by insights.rollup as
jobs finish): hour rows, the jobs of the hours a bucket's edge cuts through, and the incidents, so
the answer's cost follows the window's hours, not its deploys (insights.selectors.deploys_rollup).
Elsewhere (SQLite, the embedded default) it is one statement over the environment's finished
deploys: two window passes (the deploy before, the next good one after) and one GROUP BY per chart
bucket. Both give the same numbers (tests/insights/test_rollup.py), except that the rollup sees an
incident's previous deploy however old it is, where the jobs' statement looks back one day before
the previous window.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils.dateparse import parse_datetime

from triggers.models import Job

from ..rollup import rollup_enabled
from ..windows import Window
from .deploys_rollup import rollup_statement, unprepared

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
    if rollup_enabled():
        sql, params = rollup_statement(
            org_id=org_id, environment_ids=environment_ids, window=window, bucket_sql=_bucket_sql(window)
        )
        with connection.cursor() as cursor, unprepared(connection):
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    else:
        sql, params = _statement(org_id=org_id, environment_ids=environment_ids, window=window)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    for env_id, bucket, *values in rows:
        env = out.get(_uuid(env_id))
        if env is None:
            continue
        ran, succeeded, failures, lead, approval, queue, running, commit_count, commit = values[:9]
        incidents, restored, restore, open_since = values[9:13]
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
            incidents=int(incidents or 0),
            restored=int(restored or 0),
            restore_seconds=float(restore or 0),
        )
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
    # julianday() is a float of days: rounded to the millisecond, a whole number of days stays whole.
    "sqlite": (
        "ROUND((julianday({a}) - julianday({b})) * 86400.0, 3)",
        "(CAST({x} AS INTEGER) + ({x} > CAST({x} AS INTEGER)))",
    ),
}


def _bucket_sql(window: Window) -> str:
    # Bucket i is [end − (count − i) × bucket, end − (count − i − 1) × bucket), cut back from the
    # window's end (the first one starts at the window's start, so it may be short); -1 is the
    # previous window. As insights.windows.Window.bucket_of, from `age`: seconds before the end.
    ceil_sql = _SQL_DIALECT.get(connection.vendor, _SQL_DIALECT["postgresql"])[1]
    buckets_back = ceil_sql.format(x=f"age / {window.bucket.total_seconds()}")
    return f"CASE WHEN age <= {window.length.total_seconds()} THEN {window.bucket_count} - {buckets_back} ELSE -1 END"


def _statement(*, org_id: uuid.UUID, environment_ids: list[uuid.UUID], window: Window) -> tuple[str, list]:
    seconds_sql = _SQL_DIALECT.get(connection.vendor, _SQL_DIALECT["postgresql"])[0]

    def secs(a: str, b: str) -> str:
        return seconds_sql.format(a=a, b=b)

    ops = connection.ops
    at = ops.adapt_datetimefield_value
    end, previous_start = at(window.end), at(window.previous_start)
    lookback = at(window.previous_start - ROLLBACK_WITHIN)
    bucket = _bucket_sql(window)

    table = Job._meta.db_table
    env_list = ", ".join(["%s"] * len(environment_ids))
    env_params = [_db_uuid(pk) for pk in environment_ids]
    good = "status = 'succeeded' AND bad = 0"
    # Only the model's table name, placeholder lists and fixed snippets are put in the text; values are %s parameters.
    sql = f"""
WITH rollbacks AS MATERIALIZED (
    -- The few rollbacks asked for since then (a partial index holds only rollbacks); a refused one,
    -- cancelled before it ran, aside.
    SELECT DISTINCT rollback_of_id AS id, created_at
    FROM {table}
    WHERE org_id = %s AND environment_id IN ({env_list}) AND rollback_of_id IS NOT NULL AND created_at >= %s
      AND NOT (status = 'cancelled' AND claimed_at IS NULL)
),
rolled_back AS MATERIALIZED (
    -- Deploys a rollback was asked for within a day of.
    SELECT DISTINCT j.id
    FROM rollbacks r JOIN {table} j ON j.id = r.id
    WHERE j.status = 'succeeded' AND {secs("r.created_at", "j.finished_at")} <= %s
),
ran AS (
    SELECT j.environment_id AS env, j.id, j.status, j.created_at, j.approved_at, j.claimed_at, j.finished_at,
           j.commit_time, CASE WHEN j.status = 'failed' OR rb.id IS NOT NULL THEN 1 ELSE 0 END AS bad
    FROM {table} j LEFT JOIN rolled_back rb ON rb.id = j.id
    WHERE j.org_id = %s AND j.environment_id IN ({env_list}) AND j.status IN ('succeeded', 'failed')
      AND j.finished_at >= %s AND j.finished_at < %s
),
seq AS (
    -- An incident starts at a bad deploy whose previous deploy was not bad, and ends at the next
    -- good one (a running MIN over the later deploys, newest first: one pass, no self-join).
    SELECT ran.*,
           CASE WHEN bad = 1 AND COALESCE(LAG(bad) OVER (PARTITION BY env ORDER BY finished_at, id), 0) = 0
                THEN 1 ELSE 0 END AS starts,
           MIN(CASE WHEN {good} THEN finished_at END) OVER (
               PARTITION BY env ORDER BY finished_at DESC, id DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ) AS good_after
    FROM ran
)
SELECT env, {bucket} AS bucket,
       COUNT(*),
       SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END),
       SUM(bad),
       SUM(CASE WHEN status = 'succeeded' THEN {secs("finished_at", "created_at")} END),
       SUM(CASE WHEN status = 'succeeded' AND approved_at IS NOT NULL THEN {secs("approved_at", "created_at")} END),
       SUM(CASE WHEN status = 'succeeded' THEN {secs("claimed_at", "COALESCE(approved_at, created_at)")} END),
       SUM(CASE WHEN status = 'succeeded' THEN {secs("finished_at", "claimed_at")} END),
       SUM(CASE WHEN status = 'succeeded' AND commit_time <= created_at THEN 1 ELSE 0 END),
       SUM(CASE WHEN status = 'succeeded' AND commit_time <= created_at THEN {secs("finished_at", "commit_time")} END),
       SUM(starts),
       SUM(CASE WHEN starts = 1 AND good_after IS NOT NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN starts = 1 AND good_after IS NOT NULL THEN {secs("good_after", "finished_at")} END),
       MIN(CASE WHEN starts = 1 AND good_after IS NULL THEN finished_at END)
FROM (SELECT seq.*, {secs("%s", "finished_at")} AS age FROM seq WHERE finished_at >= %s) AS aged
GROUP BY env, bucket
"""  # noqa: S608  # nosec B608
    # In the order the placeholders appear above.
    params = [
        _db_uuid(org_id),
        *env_params,
        lookback,
        ROLLBACK_WITHIN.total_seconds(),
        _db_uuid(org_id),
        *env_params,
        lookback,
        end,
        end,
        previous_start,
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
