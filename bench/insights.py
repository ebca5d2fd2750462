"""Insights at 100 and at 100,000 jobs: every insights answer, API and page, server time.

In-process (Django's test client, no web server), production settings (DEBUG off), on
BENCH_DATABASE_URL. Seeds two orgs once (bulk inserts, bounded; re-seeded when their history is
more than six hours old, so the windows still cover it): `bench-insights` with BENCH_INSIGHTS_JOBS
(100,000) jobs over the last 365 days and `bench-insights-small` with 100, each over 4
environments, 8 triggers and 6 agents, with approvals on production, rollbacks, failures, jobs
cancelled before they ran, commit times on half the runs and steps on each trigger's latest runs
(and the DORA rollup rebuilt, as bulk inserts pass by its receivers).
Times the rollup's reconcile (insights.reconcile, the beat task's work) over every environment:
BENCH_RECONCILE_RUNS (10) runs with nothing stale, then one run after the big org's production lost its
last 48 hours of rollup rows (a lost receiver's worst case) and one after its 4 environments did; then
the same with a third org of BENCH_RECONCILE_ENVIRONMENTS (1,000) small environments added (5 recent
deploys each), plus one run after 50 of them lost theirs; the third org is removed after.
Then asks each answer BENCH_INSIGHTS_REQUESTS (20) times per org, the orgs interleaved (so both
see the same machine load), for at most BENCH_INSIGHTS_SECONDS (300) in all, and prints the
median and 95th percentile of the server time (the answer's `Server-Timing: app;dur=`).
BENCH_INSIGHTS_FROM=jobs answers the DORA measures from the jobs instead of the rollup.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/deplite_bench .venv/bin/python bench/insights.py
"""

from __future__ import annotations

import os
import random
import re
import statistics
import sys
import time
import uuid
import warnings
from datetime import timedelta
from pathlib import Path

JOBS = int(os.environ.get("BENCH_INSIGHTS_JOBS", "100000"))
SMALL = 100
REQUESTS = int(os.environ.get("BENCH_INSIGHTS_REQUESTS", "20"))
SECONDS = float(os.environ.get("BENCH_INSIGHTS_SECONDS", "300"))
ENVIRONMENTS = ("production", "staging", "qa", "preview")
STALE = timedelta(hours=6)
FROM = os.environ.get("BENCH_INSIGHTS_FROM", "rollup")  # or "jobs": the DORA answers without the rollup
RECONCILE_RUNS = int(os.environ.get("BENCH_RECONCILE_RUNS", "10"))
# The reconcile reads each environment's recent rows: its cost follows the environments and their last
# 48 hours, not the history. A third org with this many small environments, each with a few recent deploys.
MANY_ENVIRONMENTS = int(os.environ.get("BENCH_RECONCILE_ENVIRONMENTS", "1000"))
RECENT_DEPLOYS = 5
MANY_SLUG = "bench-insights-environments"


def seed(slug: str, count: int):
    """The org `slug` with `count` jobs over the last year (kept between runs while fresh)."""
    from django.db import connection
    from django.utils import timezone

    from agents.models import Agent
    from orgs.models import Membership, Organization, User
    from triggers.models import Environment, Job, JobStep, Trigger

    now = timezone.now()
    org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": slug})
    user, _ = User.objects.get_or_create(email=f"{slug}@example.com")
    Membership.objects.get_or_create(org=org, user=user, defaults={"role": "owner"})
    newest = Job.objects.filter(org=org).order_by("-finished_at").values_list("finished_at", flat=True).first()
    if Job.objects.filter(org=org).count() == count and newest and now - newest < STALE:
        return org, user
    Job.objects.filter(org=org).delete()
    envs = [Environment.objects.get_or_create(org=org, name=name)[0] for name in ENVIRONMENTS]
    triggers = [
        Trigger.objects.get_or_create(org=org, name=f"{env.name}-{n}", defaults={"workflow": "deploy"})[0]
        for env in envs
        for n in range(2)
    ]
    agents = [
        Agent.objects.get_or_create(
            org=org, name=f"agent-{n}", defaults={"labels": [ENVIRONMENTS[n % 4]], "secret": "x"}
        )[0]
        for n in range(6)
    ]
    rng = random.Random(20261207)  # the same history every time
    span = timedelta(days=365)
    step = span / count
    start = now - span
    batch: list[Job] = []
    last_good: dict[int, uuid.UUID] = {}
    for n in range(count):
        env_index = n % 4
        env, trigger, agent = envs[env_index], triggers[2 * env_index + (n // 4) % 2], agents[n % 6]
        created = start + n * step
        roll = rng.random()
        approved = created + timedelta(minutes=rng.randint(1, 30)) if env.name == "production" else None
        queued = approved or created
        claimed = queued + timedelta(seconds=rng.randint(5, 120))
        finished = claimed + timedelta(seconds=rng.randint(60, 600))
        job = Job(
            id=uuid.uuid4(),
            org=org,
            trigger=trigger,
            trigger_name=trigger.name,
            workflow="deploy",
            ref="main",
            environment=env,
            environment_name=env.name,
            created_at=created,
            commit_time=created - timedelta(minutes=rng.randint(5, 600)) if n % 2 else None,
        )
        if roll < 0.04:  # rejected or superseded before it ran
            job.status, job.finished_at = "cancelled", queued + timedelta(minutes=5)
        else:
            job.status = "failed" if roll < 0.12 else "succeeded"
            job.approved_at, job.queued_at, job.claimed_at, job.started_at, job.finished_at = (
                approved,
                queued,
                claimed,
                claimed,
                finished,
            )
            job.agent_id, job.agent_name = agent.pk, agent.name
            if job.status == "succeeded" and n % 97 == 0 and env_index in last_good:
                job.rollback_of_id = last_good[env_index]
            if job.status == "succeeded":
                last_good[env_index] = job.id
        job.fill_short_id()
        batch.append(job)
        if len(batch) == 5000:
            Job.objects.bulk_create(batch)
            batch = []
    if batch:
        Job.objects.bulk_create(batch)
    steps = []
    for trigger in triggers:
        for job_id, claimed in (
            Job.objects.filter(trigger=trigger, status__in=["succeeded", "failed"])
            .order_by("-finished_at")
            .values_list("id", "claimed_at")[:150]
        ):
            at = claimed
            for index, name in enumerate(("checkout", "build", "migrate", "deploy")):
                took = timedelta(seconds=rng.randint(5, 120))
                steps.append(
                    JobStep(
                        org=org,
                        job_id=job_id,
                        index=index,
                        name=name,
                        status="succeeded",
                        started_at=at,
                        finished_at=at + took,
                    )
                )
                at += took
    JobStep.objects.bulk_create(steps, batch_size=5000)
    # Bulk inserts pass by the receivers that keep the DORA rollup: build it as the migration does.
    from insights.rollup import rollup_rebuild

    began = time.monotonic()
    rollup_rebuild(org_id=org.pk)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE insights_environmenthour")
        cursor.execute("ANALYZE insights_environmentday")
        cursor.execute("ANALYZE insights_environmentincident")
    print(f"{slug}: DORA rollup rebuilt in {time.monotonic() - began:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE triggers_job")  # fresh statistics, as autovacuum would keep them
        cursor.execute("ANALYZE triggers_jobstep")
    return org, user


def seed_many_environments(slug: str, count: int):
    """A new org `slug` with `count` environments, each with RECENT_DEPLOYS deploys in the last 48 hours
    (bulk-inserted, their rollup rebuilt)."""
    from django.utils import timezone

    from insights.rollup import rollup_rebuild
    from orgs.models import Organization
    from triggers.models import Environment, Job

    org = Organization.objects.create(slug=slug, name=slug)
    Environment.objects.bulk_create([Environment(org=org, name=f"env-{n}") for n in range(count)], batch_size=1000)
    now = timezone.now()
    jobs = []
    for n, env in enumerate(Environment.objects.filter(org=org)):
        for k in range(RECENT_DEPLOYS):
            finished = now - timedelta(hours=1 + (n + 7 * k) % 46, minutes=k)
            job = Job(
                id=uuid.uuid4(),
                org=org,
                trigger_name="deploy",
                workflow="deploy",
                environment=env,
                environment_name=env.name,
                status="failed" if (n + k) % 9 == 0 else "succeeded",
                created_at=finished - timedelta(minutes=5),
                claimed_at=finished - timedelta(minutes=4),
                started_at=finished - timedelta(minutes=4),
                finished_at=finished,
            )
            job.fill_short_id()
            jobs.append(job)
    Job.objects.bulk_create(jobs, batch_size=5000)
    began = time.monotonic()
    rollup_rebuild(org_id=org.pk)
    print(f"{slug}: {count} environments, {len(jobs)} recent jobs (rollup rebuilt in {time.monotonic() - began:.1f} s)")
    return org


def reconcile_timing(org, many=None) -> None:
    """The reconcile's time with nothing stale (median of RECONCILE_RUNS), then with `org`'s production and
    with all its environments' last 48 hours of rollup rows gone, and (`many`) with RECONCILE_LIMIT of
    `many`'s environments' gone: each repaired by one run."""
    from django.db import connection
    from django.utils import timezone

    from insights.models import EnvironmentHour
    from insights.reconcile import RECONCILE_HOURS, RECONCILE_LIMIT, rollup_reconcile
    from triggers.models import Environment, Job

    def timed() -> tuple[float, object]:
        began = time.perf_counter()
        done = rollup_reconcile()
        return (time.perf_counter() - began) * 1000, done

    environments, jobs = Environment.objects.count(), Job.objects.count()
    quiet = []
    for _ in range(RECONCILE_RUNS):
        took, done = timed()
        assert done.stale == 0, done
        quiet.append(took)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('insights_environmenthour')")
        hour_bytes = cursor.fetchone()[0]
    print(
        f"rollup reconcile over {environments:,} environments, {jobs:,} jobs ({hour_bytes / 1e6:.1f} MB of hour "
        f"rows): nothing stale {statistics.median(quiet):.1f} ms median, {max(quiet):.1f} max ({len(quiet)} runs)"
    )
    recent = EnvironmentHour.objects.filter(hour__gte=timezone.now() - timedelta(hours=RECONCILE_HOURS))
    cases = [
        (f"{org.slug} production", recent.filter(environment__org=org, environment__name="production")),
        (f"every {org.slug} environment", recent.filter(environment__org=org)),
    ]
    if many is not None:
        some = Environment.objects.filter(org=many).order_by("pk").values("pk")[:RECONCILE_LIMIT]
        cases.append((f"{RECONCILE_LIMIT} {many.slug} environments", recent.filter(environment__in=some)))
    for name, rows in cases:
        lost = rows.delete()[0]
        took, done = timed()
        assert done.repaired == done.stale > 0, done
        print(f"  {name} stale ({lost} hour rows lost): {done.stale} repaired in one run, {took:.1f} ms")
    assert timed()[1].stale == 0


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from stack import ROOT, production_env

    sys.path.insert(0, str(ROOT))
    os.environ.update(production_env())
    warnings.filterwarnings("ignore", message="No directory at", module="django.core.handlers.base")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from triggers.models import Job, Trigger

    call_command("migrate", verbosity=0)
    if FROM == "jobs":
        # The statement over the jobs (SQLite's), for the comparison in one sitting.
        from insights.selectors import deploys

        deploys.rollup_enabled = lambda: False
    orgs = {}
    for slug, count in (("bench-insights-small", SMALL), ("bench-insights", JOBS)):
        began = time.monotonic()
        org, user = seed(slug, count)
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        trigger = Trigger.objects.filter(org=org, name="production-0").first()
        orgs[count] = (org, client, trigger)
        print(f"{slug}: {Job.objects.filter(org=org).count()} jobs (ready in {time.monotonic() - began:.1f} s)")

    from orgs.models import Organization

    # Measured last and removed after, so the first measure sees the two orgs' 8 environments only.
    Organization.objects.filter(slug=MANY_SLUG).delete()
    reconcile_timing(orgs[JOBS][0])
    if MANY_ENVIRONMENTS:
        many = seed_many_environments(MANY_SLUG, MANY_ENVIRONMENTS)
        reconcile_timing(orgs[JOBS][0], many)
        many.delete()

    def answers(org, trigger) -> dict[str, str]:
        api = f"/api/orgs/{org.slug}"
        return {
            "API all environments, 30d": f"{api}/insights?window=30d",
            "API all environments, 90d": f"{api}/insights?window=90d",
            "API production, 90d": f"{api}/insights?environment=production&window=90d",
            "API trigger": f"{api}/triggers/{trigger.pk}/insights",
            "API agents": f"{api}/insights/agents",
            "Insights page, 30d": f"/orgs/{org.slug}/insights/?window=30d",
            "Insights page, 90d": f"/orgs/{org.slug}/insights/?window=90d",
            "trigger page (whole page)": f"/orgs/{org.slug}/triggers/{trigger.pk}/",
            "environment page, 30d (whole page)": reverse("environment-detail", args=[org.slug, "production"]),
        }

    server: dict[tuple[str, int], list[float]] = {}
    deadline = time.monotonic() + SECONDS
    rounds = 0
    while rounds < REQUESTS and time.monotonic() < deadline:
        rounds += 1
        for count in (SMALL, JOBS) if rounds % 2 else (JOBS, SMALL):
            org, client, trigger = orgs[count]
            for name, url in answers(org, trigger).items():
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
                match = re.search(r"app;dur=([\d.]+)", response["Server-Timing"])
                server.setdefault((name, count), []).append(float(match.group(1)))
    print(f"insights from the {FROM}, in-process, server ms per answer (Server-Timing), {rounds} requests each:")
    print(f"| answer | {SMALL} jobs, median | {JOBS:,} jobs, median | {JOBS:,} jobs, p95 |")
    print("|---|---|---|---|")
    for name in answers(*orgs[SMALL][::2]):
        small, big = server[(name, SMALL)], server[(name, JOBS)]
        p95 = statistics.quantiles(big, n=20)[-1] if len(big) > 1 else big[0]
        print(f"| {name} | {statistics.median(small):.1f} | {statistics.median(big):.1f} | {p95:.1f} |")


if __name__ == "__main__":
    main()
