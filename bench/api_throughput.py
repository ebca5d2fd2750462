"""API throughput with and without PostgreSQL connection reuse.

Starts Deplite under gunicorn + uvicorn workers (as in production) against PostgreSQL,
then hits `GET /api/orgs/<org>` with an API token from a few client threads for a fixed
time, once with psycopg's pool and once with a new connection per request. Prints
requests per second for each. Loopback only; bounded in time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/deplite_bench .venv/bin/python bench/api_throughput.py
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
DB = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/deplite_bench")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(env) -> str:
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB.rsplit("/", 1)[1]], capture_output=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    script = (
        "from orgs.models import Organization; from orgs import services; from orgs.actors import Actor;"
        "org, _ = Organization.objects.get_or_create(slug='bench', defaults={'name': 'Bench'});"
        "_, raw = services.token_create(org=org, actor=Actor.system(), name='bench', scope_type='org');"
        "print(raw)"
    )
    return django_shell(env, script)


def django_shell(env, script: str) -> str:
    """Run `script` in `manage.py shell` with `env`; its last line of output."""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def production_env(**overrides: str) -> dict[str, str]:
    """Production settings (DEBUG off, fresh keys) on plain HTTP over loopback."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        DATABASE_URL=DB,
        DEBUG="0",
        SECRET_KEY="bench-" + Fernet.generate_key().decode(),
        DEPLITE_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        LOG_LEVEL="WARNING",
    )
    env.update(overrides)
    return env


def start_web(env: dict, port: int, *extra_args: str) -> subprocess.Popen:
    """Deplite as in production: gunicorn with ONE uvicorn worker."""
    command = [sys.executable, "-m", "gunicorn", "deplite.asgi:application", "-k", "uvicorn_worker.UvicornWorker"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning", *extra_args]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def run(label: str, env: dict, token: str) -> float:
    port = free_port()
    server = start_web(env, port)
    url = f"http://127.0.0.1:{port}/api/orgs/bench"
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
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def main():
    base = production_env(DEPLITE_TOKEN_FAILURE_RATE="100000")
    token = prepare(base)
    pooled = run("psycopg pool (default)", {**base, "DATABASE_POOL": "1"}, token)
    fresh = run("new connection per request", {**base, "DATABASE_POOL": "0", "DATABASE_CONN_MAX_AGE": "0"}, token)
    print(f"pool / new-connection throughput: {pooled / fresh:.2f}x")


if __name__ == "__main__":
    main()
