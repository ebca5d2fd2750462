"""How many idle agents one web process holds in a long poll, and how fast a new job reaches one.

Starts Deplite under gunicorn with ONE uvicorn worker, a Celery worker (job dispatch →
Redis pub/sub wake-up), PostgreSQL and Redis. Opens BENCH_WAITERS signed claim requests
with `wait=25` spread over BENCH_AGENTS agents, checks they are all still waiting, then
triggers one job through the run endpoint and measures how long until a waiting agent
receives it. Loopback only; bounded in time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/deplite_bench REDIS_URL=redis://127.0.0.1:6379/9 \\
      .venv/bin/python bench/claim_longpoll.py
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_throughput import ROOT, django_shell, free_port, prepare, production_env, start_web  # noqa: E402

WAITERS = int(os.environ.get("BENCH_WAITERS", "300"))
AGENTS = int(os.environ.get("BENCH_AGENTS", "30"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")


def make_agents(env) -> tuple[str, list[tuple[str, str]]]:
    script = (
        "import json; from orgs.models import Organization; from agents.models import Agent;"
        "from agents.signing import generate_secret; from triggers.models import Trigger, Job;"
        "org = Organization.objects.get(slug='bench');"
        "Job.objects.filter(org=org).delete(); Agent.objects.filter(org=org).delete();"
        f"agents = [Agent.objects.create(org=org, name=f'bench-{{i}}', secret=generate_secret()) for i in range({AGENTS})];"
        "t, _ = Trigger.objects.get_or_create(org=org, name='bench', defaults={'workflow': 'deploy'});"
        "print(json.dumps({'trigger': str(t.id), 'agents': [[str(a.id), a.secret] for a in agents]}))"
    )
    data = json.loads(django_shell(env, script))
    return data["trigger"], [tuple(a) for a in data["agents"]]


def signed_claim(base: str, agent_id: str, secret: str, wait: int) -> requests.Response:
    import secrets as _s

    from deplite_agent.signing import compute_v1  # the agent's own signer

    path = f"/api/agent/jobs/claim?wait={wait}"
    body = b"{}"
    ts, nonce = str(int(time.time())), _s.token_hex(16)
    v1 = compute_v1(secret=secret, ts=ts, nonce=nonce, method="POST", path=path, body=body)
    header = f"agent={agent_id},ts={ts},nonce={nonce},v1={v1}"
    return requests.post(base + path, data=body, headers={"X-Agent-Signature": header}, timeout=wait + 15)


def main():
    env = production_env(REDIS_URL=REDIS, DATABASE_POOL_MAX="20")
    token = prepare(env)
    trigger_id, agents = make_agents(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = start_web(env, port, "--backlog", "2048")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "deplite", "worker", "-c", "1", "--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                requests.get(base + "/api/orgs", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.2)
        time.sleep(2)  # the worker connects to the broker
        latencies = []
        for round_no in range(ROUNDS):
            results: list[tuple[int, float]] = []
            lock = threading.Lock()

            def waiter(i, results=results, lock=lock):
                agent_id, secret = agents[i % len(agents)]
                r = signed_claim(base, agent_id, secret, wait=25)
                with lock:
                    results.append((r.status_code, time.monotonic()))

            threads = [threading.Thread(target=waiter, args=(i,), daemon=True) for i in range(WAITERS)]
            for t in threads:
                t.start()
            time.sleep(4)
            early = len(results)
            started = time.monotonic()
            run = requests.post(
                f"{base}/triggers/{trigger_id}/run",
                data=b'{"ref": "main"}',
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert run.status_code == 202, run.text
            while time.monotonic() - started < 20 and not any(code == 200 for code, _ in results):
                time.sleep(0.005)
            got = [t for code, t in results if code == 200]
            latency = (min(got) - started) if got else float("nan")
            latencies.append(latency)
            for t in threads:
                t.join(timeout=40)
            codes = [code for code, _ in results]
            print(
                f"round {round_no + 1}: {WAITERS} waiting claims on 1 web process; returned before the job: {early}; "
                f"job reached an agent after {latency * 1000:.0f} ms; answers: 200×{codes.count(200)}, "
                f"204×{codes.count(204)}, other×{len(codes) - codes.count(200) - codes.count(204)}"
            )
        print(
            f"wake-up latency median {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
            f"(recheck interval without a wake-up: 5000 ms)"
        )
    finally:
        for p in (web, worker):
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=30)


if __name__ == "__main__":
    main()
