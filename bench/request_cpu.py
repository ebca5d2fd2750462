"""CPU per request on the hot paths: the web process's and PostgreSQL's, measured in-process.

wrk's requests per second (bench/run.py) are the product's number, but on a machine shared with
other work they move by more than the difference between two ways of doing one step. CPU time
does not depend on who else runs: this script sends each path's requests through Django's
handler in this process (Django's test client: every middleware, DRF, the renderer and parser,
the pooled connection; no HTTP server) and reports, per request, this process's CPU time and the
CPU time of PostgreSQL's backends for the bench database (from /proc), median of the rounds,
rounds interleaved path by path. For A/B comparisons of one step on the hot path (run it on
each variant, alternately, in the same hour).

    .venv/bin/python bench/request_cpu.py [run presign …]   # paths whose name contains a word; all by default
    # BENCH_CPU_ROUNDS (7) rounds of BENCH_CPU_REQUESTS (300) requests per path
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import ROOT, flush_redis, prepare_database, production_env  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_CPU_ROUNDS", "7"))
REQUESTS = int(os.environ.get("BENCH_CPU_REQUESTS", "300"))
TICKS = os.sysconf("SC_CLK_TCK")


def _backend_cpu(db_name: str) -> float:
    """CPU seconds used so far by every PostgreSQL backend connected to `db_name` (this host's /proc)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [db_name])
        pids = [row[0] for row in cursor.fetchall()]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return total


def main() -> None:
    env = production_env()
    prepare_database(env)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from orgs import services
    from orgs.models import ApiToken, Organization
    from orgs.scoping import Actor
    from storage import services as storage_services
    from storage.models import StorageBinding
    from triggers.models import Job, Trigger

    flush_redis()
    org, _ = Organization.objects.get_or_create(slug="bench-cpu", defaults={"name": "Bench CPU"})
    ApiToken.objects.filter(org=org).delete()
    Job.objects.filter(org=org).delete()
    _, token = services.token_create(org=org, actor=Actor.system(), name="bench", scope_type="org")
    trigger, _ = Trigger.objects.get_or_create(org=org, name="bench-cpu", defaults={"workflow": "deploy"})
    StorageBinding.objects.filter(org=org).delete()
    binding = storage_services.binding_create(
        org=org, actor=Actor.system(), name="bench", endpoint="http://127.0.0.1:9", bucket="bench",
        access_key="AKIABENCH", secret_key="bench-secret", region="us-east-1", path_style=True,
    )  # fmt: skip
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    body = json.dumps({"ref": "main", "params": {"SHA": "3f2a9c1", "ACTOR": "octocat", "REPO": "acme/web"}})
    presign = json.dumps({"bindingId": str(binding.id), "fileName": "build.tar.gz", "size": 1048576})
    paths = {
        "ceiling (bench/ceiling.py)": lambda: client.post("/bench/ceiling", body, content_type="application/json"),
        "POST /triggers/<id>/run": lambda: client.post(f"/triggers/{trigger.id}/run", body, content_type=""),
        "POST …/files/presign-upload": lambda: client.post(
            "/api/orgs/bench-cpu/files/presign-upload", presign, content_type=""
        ),
        "GET /api/orgs/<org>/jobs (50)": lambda: client.get("/api/orgs/bench-cpu/jobs"),
    }
    if sys.argv[1:]:
        paths = {name: call for name, call in paths.items() if any(word in name for word in sys.argv[1:])}
    db_name = settings.DATABASES["default"]["NAME"]
    for call in paths.values():  # warm up: imports, the pool, prepared statements, boto3's client
        for _ in range(30):
            status = call().status_code
        assert status < 300, status
    web: dict[str, list[float]] = {name: [] for name in paths}
    pg: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(ROUNDS):
        for name, call in paths.items():
            pg_before, cpu_before = _backend_cpu(db_name), time.process_time()
            for _ in range(REQUESTS):
                call()
            cpu_after, pg_after = time.process_time(), _backend_cpu(db_name)
            web[name].append((cpu_after - cpu_before) / REQUESTS * 1000)
            pg[name].append((pg_after - pg_before) / REQUESTS * 1000)
    flush_redis()
    Job.objects.filter(org=org).delete()
    print(f"CPU per request, median of {ROUNDS} rounds x {REQUESTS} requests (ms)")
    print("| path | web process | PostgreSQL | web, per round |")
    print("|---|---|---|---|")
    for name in paths:
        rounds = ", ".join(f"{v:.2f}" for v in web[name])
        print(f"| {name} | {statistics.median(web[name]):.3f} | {statistics.median(pg[name]):.3f} | {rounds} |")


if __name__ == "__main__":
    main()
