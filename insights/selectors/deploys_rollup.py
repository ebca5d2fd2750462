"""The DORA statement over the rollup (insights.models), PostgreSQL: the same rows as
insights.selectors.deploys' statement over the jobs, read from

- the environment's day rows of the whole days no edge of a bucket or window cuts through, and the
  hour rows of the other days (a few thousand small rows, whatever the pace);
- the jobs of the hours a bucket's edge cuts through (the windows end at the reader's "now", so the
  edges fall at any minute): one hour per edge, by index;
- its incidents that began in the two windows (restored only by a deploy before the window's end).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from triggers.models import Job

from ..models import EnvironmentDay, EnvironmentHour, EnvironmentIncident
from ..rollup import BAD_SQL, DAY, HOUR, floor_day, floor_hour
from ..windows import Window


@contextmanager
def unprepared(connection) -> Iterator[None]:
    """Run this statement unprepared (psycopg's `prepare_threshold` None for its time): prepared, after a
    few runs PostgreSQL may keep one generic plan for every org, and one fitted to a small org's few
    rows (or costed without the values) is many times slower on a large one; a custom plan per run
    costs a fraction of a millisecond to make."""
    connection.ensure_connection()
    raw = connection.connection
    saved = raw.prepare_threshold
    raw.prepare_threshold = None
    try:
        yield
    finally:
        raw.prepare_threshold = saved


def _edges(window: Window) -> list[datetime]:
    return [at.astimezone(UTC) for at in (window.previous_start, window.start, *window.bucket_starts(), window.end)]


def edge_hours(window: Window) -> list[datetime]:
    """The UTC hours an edge of a bucket or of a window cuts through (an edge at an hour's start cuts
    none): read from the jobs, not the rollup."""
    return sorted({floor_hour(at) for at in _edges(window) if at != floor_hour(at)})


def edge_days(window: Window) -> list[datetime]:
    """The UTC days an edge cuts through: read by the hour (the other days by the day)."""
    return sorted({floor_day(at) for at in _edges(window) if at != floor_day(at)})


def rollup_statement(
    *, org_id: uuid.UUID, environment_ids: list[uuid.UUID], window: Window, bucket_sql: str
) -> tuple[str, list]:
    """`bucket_sql` turns `age` (seconds before the window's end) into a bucket, as the jobs' statement does.

    A window whose edges all fall at whole hours (insights.windows: the pages' and the API's do) reads
    no job: its parts are the day rows, the hour rows of the days an edge cuts, and the incidents."""
    job, days, hours = Job._meta.db_table, EnvironmentDay._meta.db_table, EnvironmentHour._meta.db_table
    incidents = EnvironmentIncident._meta.db_table
    env_list = ", ".join(["%s"] * len(environment_ids))
    end, previous_start = window.end, window.previous_start
    edges = edge_hours(window)
    days_cut = edge_days(window)

    def secs(a: str, b: str) -> str:
        return f"EXTRACT(EPOCH FROM ({a} - {b}))"

    ok = "j.status = 'succeeded'"
    commit = f"{ok} AND j.commit_time <= j.created_at"
    restored = "i.restored_at < %s"

    def sums(alias: str) -> str:
        return (
            f"{alias}.ran, {alias}.succeeded, {alias}.failures, {alias}.lead_seconds AS lead, "
            f"{alias}.approval_seconds AS approval, {alias}.queue_seconds AS queue, "
            f"{alias}.running_seconds AS running, {alias}.commit_count, {alias}.commit_seconds AS commit"
        )

    # Each part with its parameters, in the order its placeholders appear. Only table names, placeholder
    # lists and fixed snippets are put in the text; values are %s parameters.
    parts: list[tuple[str, list]] = [
        (
            f"""SELECT d.environment_id AS env, d.day AS at, {sums("d")},
               0 AS incidents, 0 AS restored, 0.0::float8 AS restore, NULL::timestamptz AS open_since
        FROM {days} d
        WHERE d.org_id = %s AND d.environment_id IN ({env_list}) AND d.day >= %s AND d.day < %s
          AND NOT (d.day = ANY(%s::timestamptz[]))""",  # noqa: S608  # nosec B608
            [org_id, *environment_ids, floor_day(previous_start.astimezone(UTC)), end, days_cut],
        )
    ]
    if days_cut:
        # Constant ranges, not a join with an array: the planner then knows they hold a few rows (a
        # misjudged join made its cost estimate large enough to compile the statement, slower than running it).
        day_ranges = " OR ".join(["(h.hour >= %s AND h.hour < %s)"] * len(days_cut))
        parts.append(
            (
                f"""SELECT h.environment_id, h.hour, {sums("h")}, 0, 0, 0.0, NULL
        FROM {hours} h
        WHERE h.org_id = %s AND h.environment_id IN ({env_list}) AND h.hour >= %s AND h.hour < %s
          AND NOT (h.hour = ANY(%s::timestamptz[])) AND ({day_ranges})""",  # noqa: S608  # nosec B608
                [
                    org_id,
                    *environment_ids,
                    floor_hour(previous_start.astimezone(UTC)),
                    end,
                    edges,
                    *[at for day in days_cut for at in (day, day + DAY)],
                ],
            )
        )
    if edges:
        edge_ranges = " OR ".join(["(j.finished_at >= %s AND j.finished_at < %s)"] * len(edges))
        parts.append(
            (
                f"""SELECT j.environment_id, j.finished_at, 1, ({ok})::int, ({BAD_SQL})::int,
               CASE WHEN {ok} THEN {secs("j.finished_at", "j.created_at")} END,
               CASE WHEN {ok} AND j.approved_at IS NOT NULL THEN {secs("j.approved_at", "j.created_at")} END,
               CASE WHEN {ok} THEN {secs("j.claimed_at", "COALESCE(j.approved_at, j.created_at)")} END,
               CASE WHEN {ok} THEN {secs("j.finished_at", "j.claimed_at")} END,
               ({commit})::int, CASE WHEN {commit} THEN {secs("j.finished_at", "j.commit_time")} END,
               0, 0, 0.0, NULL
        FROM {job} j
        WHERE j.org_id = %s AND j.environment_id IN ({env_list}) AND j.status IN ('succeeded', 'failed')
          AND j.finished_at >= %s AND j.finished_at < %s AND ({edge_ranges})""",  # noqa: S608  # nosec B608
                [org_id, *environment_ids, previous_start, end, *[at for hour in edges for at in (hour, hour + HOUR)]],
            )
        )
    union = "\n        UNION ALL\n        ".join(text for text, _ in parts)
    # The incidents are grouped on their own: many small rows (one per run of bad deploys) that carry
    # none of the deploys' sums (a 90-day answer at 100,000 jobs reads ~4,000).
    sql = f"""
SELECT env, {bucket_sql} AS bucket,
       SUM(ran), SUM(succeeded), SUM(failures), SUM(lead), SUM(approval), SUM(queue), SUM(running),
       SUM(commit_count), SUM(commit), 0, 0, 0.0, NULL
FROM (
    SELECT parts.*, date_part('epoch', %s - at) AS age FROM (
        {union}
    ) AS parts
) AS aged
GROUP BY env, bucket
UNION ALL
SELECT env, {bucket_sql} AS bucket, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0, 0.0,
       COUNT(*), SUM(restored), SUM(restore), MIN(open_since)
FROM (
    SELECT i.environment_id AS env, date_part('epoch', %s - i.started_at) AS age,
           CASE WHEN {restored} THEN 1 ELSE 0 END AS restored,
           CASE WHEN {restored} THEN {secs("i.restored_at", "i.started_at")} ELSE 0.0 END AS restore,
           CASE WHEN i.restored_at IS NULL OR i.restored_at >= %s THEN i.started_at END AS open_since
    FROM {incidents} i
    WHERE i.org_id = %s AND i.environment_id IN ({env_list}) AND i.started_at >= %s AND i.started_at < %s
) AS incidents
GROUP BY env, bucket
"""  # noqa: S608  # nosec B608
    return sql, [
        end,
        *[param for _, params in parts for param in params],
        end,
        end,
        end,
        end,
        org_id,
        *environment_ids,
        previous_start,
        end,
    ]
