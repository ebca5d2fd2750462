"""API throughput with and without PostgreSQL connection reuse.

Starts Deplite as the Procfile's web line runs it (bench/stack.py) against PostgreSQL,
then hits `GET /api/orgs/<org>` with an API token from a few client threads for a fixed
time, once with psycopg's pool and once with a new connection per request. Prints
requests per second for each. Loopback only; bounded in time.

    .venv/bin/python bench/api_throughput.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import prepare_database, production_env, shell, start_web  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))


def prepare(env) -> str:
    prepare_database(env)
    script = (
        "import json; from orgs.models import Organization; from orgs import services; from orgs.scoping import Actor;"
        "org, _ = Organization.objects.get_or_create(slug='bench', defaults={'name': 'Bench'});"
        "_, raw = services.token_create(org=org, actor=Actor.system(), name='bench', scope_type='org');"
        "print(json.dumps(raw))"
    )
    return shell(env, script)


def run(label: str, env: dict, token: str) -> float:
    server, base = start_web(env)
    url = f"{base}/api/orgs/bench"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(100):
            try:
                if requests.get(url, headers=headers, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        if shutil.which("wrk"):
            # wrk (Debian package) loads the server without a Python client competing for the 2 cores.
            out = subprocess.run(
                ["wrk", "-t2", f"-c{CLIENTS}", f"-d{int(SECONDS)}s", "-H", f"Authorization: Bearer {token}", url],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            latency = re.search(r"Latency\s+(\S+)", out).group(1)
            print(
                f"{label:<40} {rps:8.1f} req/s  (wrk, {CLIENTS} connections, mean latency {latency}, "
                f"{non2xx.group(1) if non2xx else 0} non-2xx)"
            )
            return rps
        counts = [0] * CLIENTS
        errors = [0] * CLIENTS
        stop = time.monotonic() + SECONDS

        def client(i):
            s = requests.Session()
            while time.monotonic() < stop:
                r = s.get(url, headers=headers, timeout=10)
                if r.status_code == 200:
                    counts[i] += 1
                else:
                    errors[i] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rps = sum(counts) / SECONDS
        print(
            f"{label:<40} {rps:8.1f} req/s  ({sum(counts)} ok, {sum(errors)} errors, {CLIENTS} clients, {SECONDS:.0f} s)"
        )
        return rps
    finally:
        server.stop()


def main():
    base = production_env()
    token = prepare(base)
    pooled = run("psycopg pool (default)", {**base, "DATABASE_POOL": "1"}, token)
    fresh = run("new connection per request", {**base, "DATABASE_POOL": "0", "DATABASE_CONN_MAX_AGE": "0"}, token)
    print(f"pool / new-connection throughput: {pooled / fresh:.2f}x")


if __name__ == "__main__":
    main()
