"""Schedules at scale: one beat tick with 10,000 enabled schedules (issue 23: under 1 s server time).

Seeds BENCH_SCHEDULES (10,000) enabled schedules in the org `bench-schedules` (bulk inserts; the
org's schedules and jobs are replaced each run), then times `schedules_fire_due` in one process
against PostgreSQL and Redis (the production settings), with the clock set by its `now`:

- none due: the tick reads the partial index on next_fire_at and finds nothing;
- BENCH_SCHEDULES_DUE (100) due: they fire (one job each, the same path as the beat's tick);
- every schedule due at the same minute (`0 0 * * *` for all): the worst case, reported as fires/s
  and as how many ticks (each bounded by services.TICK_TIME_BUDGET_SECONDS) it takes.

It also prints PostgreSQL's plan for the tick's query (the partial index `schedule_due`).

    .venv/bin/python bench/schedules.py     # or as part of `make bench` (the part `schedules`)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import prepare_database, production_env, shell  # noqa: E402

COUNT = int(os.environ.get("BENCH_SCHEDULES", "10000"))
DUE = int(os.environ.get("BENCH_SCHEDULES_DUE", "100"))

SCRIPT = """
import json, os, time
from datetime import datetime, timedelta, timezone as tz
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext
from orgs.models import Organization, Membership, User
from triggers.models import Trigger, Job, Schedule, ScheduleFire
from triggers.schedules import services

UTC = tz.utc
org, _ = Organization.objects.get_or_create(slug='bench-schedules', defaults={'name': 'bench-schedules'})
user, _ = User.objects.get_or_create(email='bench-schedules@example.test')
Membership.objects.get_or_create(org=org, user=user, defaults={'role': 'owner'})
Schedule.objects.filter(org=org).delete()
Job.objects.filter(org=org).delete()
trigger, _ = Trigger.objects.get_or_create(org=org, name='bench-nightly', defaults={'workflow': 'deploy'})
now = datetime(2030, 1, 7, 12, 0, 5, tzinfo=UTC)

def seed(cron, next_fire_at):
    rows = [Schedule(org=org, trigger=trigger, cron=cron, timezone='Europe/Berlin', created_by=user,
                     actor_kind='user', actor_id=str(user.pk), actor_label=user.email, next_fire_at=next_fire_at(i))
            for i in range(COUNT)]
    Schedule.objects.bulk_create(rows, batch_size=2000)
    connection.cursor().execute('ANALYZE triggers_schedule')

def backend_cpu():
    # PostgreSQL's own CPU for this connection (its backend process, from /proc): with the app's CPU,
    # a figure that does not move with the rest of a shared machine's load, unlike the wall time.
    with connection.cursor() as cursor:
        cursor.execute('SELECT pg_backend_pid()')
        pid = cursor.fetchone()[0]
    fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

def tick():
    db_before = backend_cpu()
    with CaptureQueriesContext(connection) as queries:
        started, cpu = time.perf_counter(), time.process_time()
        made = services.schedules_fire_due(now=now)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return made, seconds, len(queries), cpu, backend_cpu() - db_before

# 1) COUNT enabled schedules, the first DUE due now, the rest spread over the coming days.
# 13:00 in Berlin is 12:00 UTC in January: next_fire_at is always one of the expression's fire times.
due_at = datetime(2030, 1, 7, 12, tzinfo=UTC)
seed('0 13 * * *', lambda i: due_at if i < DUE else due_at + timedelta(days=1 + i % 300))
with connection.cursor() as cursor:
    sql, params = Schedule.objects.filter(enabled=True, next_fire_at__lte=now).order_by('next_fire_at')[:200].query.sql_with_params()
    cursor.execute('EXPLAIN ' + sql, params)
    plan = [row[0] for row in cursor.fetchall()]
Schedule.objects.filter(org=org, next_fire_at__lte=now).update(next_fire_at=now + timedelta(days=30))
none_due = tick()
ids = list(Schedule.objects.filter(org=org).values_list('id', flat=True)[:DUE])
Schedule.objects.filter(id__in=ids).update(next_fire_at=due_at)
some_due = tick()
again = tick()

# 2) Every schedule due at the same minute.
Schedule.objects.filter(org=org).delete()
Job.objects.filter(org=org).delete()
seed('0 13 * * *', lambda i: due_at)
ticks, total_made, total_seconds, total_cpu = 0, 0, 0.0, 0.0
while ticks < 100:
    made, seconds, _, cpu, db_cpu = tick()
    ticks += 1; total_made += made; total_seconds += seconds; total_cpu += cpu + db_cpu
    if made == 0:
        break
fires = ScheduleFire.objects.filter(org=org).count()
jobs = Job.objects.filter(org=org, source='schedule').count()
print(json.dumps({
    'count': COUNT, 'due': DUE, 'plan': plan,
    'none_due': none_due, 'some_due': some_due, 'again': again,
    'all_due': {'ticks': ticks, 'made': total_made, 'seconds': total_seconds, 'cpu': total_cpu, 'fires': fires,
                'jobs': jobs},
    'load': os.getloadavg()[0],
}))
"""


def measure(env: dict) -> dict:
    script = f"COUNT = {COUNT}\nDUE = {DUE}\n" + SCRIPT
    return shell(env, script, timeout=1800)


def table(result: dict) -> list[str]:
    every = result["all_due"]
    index = "schedule_due" if any("schedule_due" in line for line in result["plan"]) else "NOT the partial index"

    def row(label: str, measured: list) -> str:
        made, seconds, queries, cpu, db_cpu = measured
        return f"| {label} | {made} | {1000 * seconds:.1f} | {1000 * (cpu + db_cpu):.0f} | {queries} |"

    return [
        "",
        f"| schedules tick, {result['count']:,} enabled schedules (load average {result['load']:.1f}) | jobs made "
        "| server ms (wall) | CPU ms (app + PostgreSQL) | queries |",
        "|---|---|---|---|---|",
        row("none due", result["none_due"]),
        row(f"{result['due']} due", result["some_due"]),
        row("the same tick again (all fired)", result["again"]),
        f"| all {result['count']:,} due at one minute, over {every['ticks']} ticks | {every['made']:,} "
        f"| {1000 * every['seconds']:.0f} ({every['made'] / max(every['seconds'], 1e-9):.0f} fires/s) "
        f"| {1000 * every['cpu']:.0f} ({every['made'] / max(every['cpu'], 1e-9):.0f} fires per CPU s) | |",
        "",
        f"due schedules are read through the index {index}; fire rows {every['fires']:,}, jobs {every['jobs']:,} "
        f"(one per fire{'' if every['fires'] == every['jobs'] == every['made'] else ' — MISMATCH'}).",
    ]


if __name__ == "__main__":
    env = production_env()
    prepare_database(env)
    result = measure(env)
    print("\n".join(f"  {line}" for line in result["plan"]))
    print("\n".join(table(result)))
