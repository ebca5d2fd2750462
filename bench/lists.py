"""Lists at 100,000 jobs: every jobs/triggers list, API and page, timed over loopback.

Seeds BENCH_LIST_JOBS (100,000) jobs over 5 triggers in the org `bench-lists` once (kept
between runs; bulk inserts, bounded) and 100 in `bench-lists-small`, then asks each list
BENCH_LIST_REQUESTS (20) times in a row per org and reports, for both, the median server time
(Django's own time, from the answer's `Server-Timing: app;dur=` header), and at 100,000 its 95th
percentile and the median time to a full answer over loopback (client included).

    .venv/bin/python bench/lists.py     # or as part of `make bench`
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import production_env, shell, start_web  # noqa: E402

JOBS = int(os.environ.get("BENCH_LIST_JOBS", "100000"))
SMALL = 100  # the same lists over a small org: the cost must not grow with the jobs
REQUESTS = int(os.environ.get("BENCH_LIST_REQUESTS", "20"))

SEED = """
import json
from datetime import timedelta
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from orgs.models import Organization, ApiToken, Membership, User
from orgs import services
from orgs.scoping import Actor
from triggers.models import Trigger, Job
org, _ = Organization.objects.get_or_create(slug=SLUG, defaults={'name': SLUG})
ApiToken.objects.filter(org=org).delete()
_, raw = services.token_create(org=org, actor=Actor.system(), name='bench', scope_type='org')
triggers = []
for i in range(5):
    t, _ = Trigger.objects.get_or_create(org=org, name=f'bench-{i}', defaults={'workflow': 'deploy'})
    triggers.append(t)
have = Job.objects.filter(org=org).count()
statuses = ['succeeded', 'succeeded', 'succeeded', 'failed', 'cancelled']
start = timezone.now() - timedelta(days=100)
batch = []
for n in range(have, COUNT):
    t = triggers[n % 5]
    batch.append(Job(org=org, trigger=t, trigger_name=t.name, workflow='deploy', ref='main',
                     status=statuses[n % 5], created_at=start + timedelta(seconds=n * 60)))
    if len(batch) == 5000:
        Job.objects.bulk_create(batch); batch = []
if batch:
    Job.objects.bulk_create(batch)
from django.db import connection
connection.cursor().execute('ANALYZE triggers_job')  # fresh statistics, as autovacuum would keep them
if hasattr(Trigger, 'last_job'):
    for t in triggers:
        Trigger.objects.filter(pk=t.pk).update(last_job=Job.objects.filter(trigger=t).order_by('-created_at', '-id').first())
user, _ = User.objects.get_or_create(email=SLUG + '@example.com')
Membership.objects.get_or_create(org=org, user=user, defaults={'role': 'owner'})
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(json.dumps({'token': raw, 'session': session.session_key, 'trigger': str(triggers[0].id),
                  'jobs': Job.objects.filter(org=org).count()}))
"""


def measure(env: dict, base: str) -> dict:
    small = _lists(env, base, "bench-lists-small", SMALL)
    big = _lists(env, base, "bench-lists", JOBS)
    # Interleaved, so both orgs see the same machine load (shared cores drift).
    server: dict[tuple[str, str], list[float]] = {}
    full: dict[tuple[str, str], list[float]] = {}
    for _ in range(REQUESTS):
        for which, lists in (("small", small["lists"]), ("big", big["lists"])):
            for name, (url, headers) in lists.items():
                started = time.perf_counter()
                response = requests.get(url, headers=headers, timeout=30)
                full.setdefault((which, name), []).append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (url, response.status_code, response.text[:200])
                server.setdefault((which, name), []).append(float(response.headers["Server-Timing"].split("dur=")[1]))
    timings = {}
    for name in big["lists"]:
        b = sorted(server[("big", name)])
        timings[name] = (
            statistics.median(server[("small", name)]),
            statistics.median(b),
            b[round(0.95 * len(b)) - 1],
            statistics.median(full[("big", name)]),
        )
        print(
            f"  {name:<28} server time: {SMALL} jobs {timings[name][0]:6.1f} ms, "
            f"{big['jobs']} jobs {timings[name][1]:6.1f} ms (full answer {timings[name][3]:6.1f} ms)"
        )
    return {"jobs": big["jobs"], "small": small["jobs"], "timings": timings}


def _lists(env: dict, base: str, slug: str, count: int) -> dict:
    seed = shell(env, SEED.replace("SLUG", repr(slug)).replace("COUNT", str(count)), timeout=900)
    api = {"Authorization": f"Bearer {seed['token']}"}
    page = {"Cookie": f"sessionid={seed['session']}"}
    org = f"{base}/api/orgs/{slug}"
    first = requests.get(f"{org}/jobs", headers=api, timeout=30).json()
    lists = {
        "API jobs": (f"{org}/jobs", api),
        "API jobs, next page": (first["next"], api),
        "API jobs ?trigger=": (f"{org}/jobs?trigger={seed['trigger']}", api),
        "API jobs ?status=failed": (f"{org}/jobs?status=failed", api),
        "API triggers": (f"{org}/triggers", api),
        "page jobs": (f"{base}/orgs/{slug}/jobs/", page),
        "page jobs ?status=failed": (f"{base}/orgs/{slug}/jobs/?status=failed", page),
        "page triggers": (f"{base}/orgs/{slug}/triggers/", page),
    }
    return {"jobs": seed["jobs"], "lists": lists}


if __name__ == "__main__":
    from run import table

    env = production_env()
    web, base = start_web(env, workers=2)
    try:
        print(table({"lists": measure(env, base)}))
    finally:
        web.stop()
