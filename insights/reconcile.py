"""Healing the DORA rollup (insights.rollup) where it went stale.

The receivers keep it as jobs change, but a recompute that failed (logged, then forgotten) or jobs
written past them (bulk inserts, raw SQL) leave hours that no longer say what the jobs say. Every few
minutes (`insights_rollup_reconcile`, insights.tasks) one statement compares, for every environment and
every UTC hour of the last RECONCILE_HOURS, the deploys the jobs hold (ran: succeeded or failed, and
succeeded) with the environment's hour rows, and only the environments that differ are recomputed over
the hours that differ (their days and incidents with them).

It compares counts, not the sums or the failures a rollback adds (that would read every deploy's
rollbacks): a missed job changes its hour's counts. Older hours, or a rollback written past the
receivers, are what `manage.py rollup_rebuild` is for.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from triggers.models import Environment, Job

from . import rollup
from .models import EnvironmentHour

logger = logging.getLogger(__name__)

RECONCILE_HOURS = 48
# Environments recomputed per run at most (the rest on the next run): a mass of stale ones (a bulk
# import) is spread over runs rather than holding one for long.
RECONCILE_LIMIT = 50
_INSTANT = timedelta(microseconds=1)

_ENVIRONMENTS = Environment._meta.db_table
_JOB = Job._meta.db_table
_HOURS = EnvironmentHour._meta.db_table
# Per environment (LATERAL, so each side reads the environment's recent rows by index — job_env_ran and
# insights_env_hour — however long the history): the jobs' counts per hour, minus the hour rows' counts;
# an hour left with a non-zero difference is stale. Only the environments with one come back, with
# their first and last stale hour.
STALE_SQL = f"""
SELECT e.id, MIN(stale.hour), MAX(stale.hour)
FROM {_ENVIRONMENTS} e
CROSS JOIN LATERAL (
    SELECT counts.hour FROM (
        SELECT date_trunc('hour', j.finished_at, 'UTC') AS hour, 1 AS ran, (j.status = 'succeeded')::int AS succeeded
        FROM {_JOB} j
        WHERE j.environment_id = e.id AND j.status IN ('succeeded', 'failed') AND j.finished_at >= %s
        UNION ALL
        SELECT h.hour, -h.ran, -h.succeeded
        FROM {_HOURS} h
        WHERE h.environment_id = e.id AND h.hour >= %s
    ) AS counts
    GROUP BY counts.hour
    HAVING SUM(counts.ran) <> 0 OR SUM(counts.succeeded) <> 0
) AS stale
GROUP BY e.id
ORDER BY MIN(stale.hour), e.id
LIMIT %s
"""  # noqa: S608  # nosec B608 (table names only; values are parameters)


@dataclass(frozen=True)
class Reconciled:
    stale: int  # environments found stale (at most the limit)
    repaired: int  # of them, recomputed (a failure is logged and left to the next run)


def rollup_stale_environments(
    *, now: datetime | None = None, hours: int = RECONCILE_HOURS, limit: int = RECONCILE_LIMIT
) -> list[tuple[uuid.UUID, datetime, datetime]]:
    """The environments whose hour rows of the last `hours` differ from their jobs: (id, first, last hour)."""
    # From an hour's start, so both sides cover the same whole hours.
    since = rollup.floor_hour((now or timezone.now()) - timedelta(hours=hours))
    with connection.cursor() as cursor:
        cursor.execute(STALE_SQL, [since, since, limit])
        return list(cursor.fetchall())


def rollup_reconcile(
    *, now: datetime | None = None, hours: int = RECONCILE_HOURS, limit: int = RECONCILE_LIMIT
) -> Reconciled:
    """Recompute the rollup of the environments whose recent hours differ from their jobs; one
    statement and no write when none does. Safe to run twice or beside the receivers (each recompute
    reads the jobs under the environment's lock)."""
    if not rollup.rollup_enabled():
        return Reconciled(stale=0, repaired=0)
    stale = rollup_stale_environments(now=now, hours=hours, limit=limit)
    repaired = 0
    for environment_id, first, last in stale:
        try:
            with transaction.atomic():
                # To the last hour's last instant: the incidents are recomputed up to the first good
                # deploy after it, so a deploy late in that hour is inside their span.
                until = last + rollup.HOUR - _INSTANT
                rollup.rollup_recompute(environment_id=environment_id, since=first, until=until)
        except Exception:
            # One environment's failure does not keep the others stale; the next run tries it again.
            logger.exception("DORA rollup: reconciling environment %s failed.", environment_id)
            continue
        repaired += 1
    if stale:
        logger.info("DORA rollup: %d stale environment(s) found, %d recomputed.", len(stale), repaired)
    return Reconciled(stale=len(stale), repaired=repaired)
