"""Trigger → agent start: how fast a new job reaches one of 300 agents waiting on ONE web process.

Starts the Procfile's web line with one worker and a Celery worker (job dispatch → Redis
wake-up). Opens BENCH_WAITERS signed claim requests (`wait=BENCH_WAIT`) spread over
BENCH_AGENTS agents, checks they are all still waiting, then runs BENCH_JOBS jobs one after
the other through the run endpoint and, for each, measures the time from its 202 to the
claim answer carrying that job. Repeated BENCH_ROUNDS times. Reports the web process's RSS
while they wait. Loopback only; bounded in count and time.

    .venv/bin/python bench/claim_longpoll.py     # or as part of `make bench`
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import REDIS, production_env, shell, start_web, start_worker, web_rss  # noqa: E402

WAITERS = int(os.environ.get("BENCH_WAITERS", "300"))
AGENTS = int(os.environ.get("BENCH_AGENTS", "30"))
ROUNDS = int(os.environ.get("BENCH_CLAIM_ROUNDS", "3"))
JOBS = int(os.environ.get("BENCH_JOBS", "20"))
WAIT = int(os.environ.get("BENCH_WAIT", "15"))

SEED = f"""
import json
from orgs.models import Organization, ApiToken
from orgs import services
from orgs.scoping import Actor
from agents.models import Agent
from agents.signing import generate_secret
from triggers.models import Trigger, Job
org, _ = Organization.objects.get_or_create(slug='bench-claim', defaults={{'name': 'Bench claim'}})
Job.objects.filter(org=org).delete(); Agent.objects.filter(org=org).delete(); ApiToken.objects.filter(org=org).delete()
agents = [Agent.objects.create(org=org, name=f'bench-{{i}}', secret=generate_secret()) for i in range({AGENTS})]
t, _ = Trigger.objects.get_or_create(org=org, name='bench', defaults={{'workflow': 'deploy'}})
_, raw = services.token_create(org=org, actor=Actor.system(), name='bench', scope_type='org')
print(json.dumps({{'trigger': str(t.id), 'token': raw, 'agents': [[str(a.id), a.secret] for a in agents]}}))
"""


def signed_claim(base: str, agent_id: str, secret: str, wait: int) -> requests.Response:
    from deplite_agent.signing import compute_v1  # the agent's own signer

    path = f"/api/agent/jobs/claim?wait={wait}"
    body = b"{}"
    ts, nonce = str(int(time.time())), secrets.token_hex(16)
    v1 = compute_v1(secret=secret, ts=ts, nonce=nonce, method="POST", path=path, body=body)
    header = f"agent={agent_id},ts={ts},nonce={nonce},v1={v1}"
    return requests.post(base + path, data=body, headers={"X-Agent-Signature": header}, timeout=wait + 15)


def measure(env: dict) -> dict:
    seed = shell(env, SEED)
    agents = seed["agents"]
    web, base = start_web(env, workers=1, extra=("--backlog", "2048"))
    worker = start_worker(env)
    latencies: list[float] = []
    answers = {"200": 0, "204": 0, "other": 0}
    early = 0
    rss = 0.0
    subscriptions = 0
    try:
        for round_no in range(ROUNDS):
            got: dict[str, float] = {}
            codes: list[int] = []
            lock = threading.Lock()

            def waiter(i, got=got, codes=codes, lock=lock):
                agent_id, secret = agents[i % len(agents)]
                try:
                    r = signed_claim(base, agent_id, secret, wait=WAIT)
                except requests.RequestException:
                    with lock:
                        codes.append(0)
                    return
                at = time.monotonic()
                with lock:
                    codes.append(r.status_code)
                    if r.status_code == 200:
                        got[r.json()["id"]] = at

            threads = [threading.Thread(target=waiter, args=(i,), daemon=True) for i in range(WAITERS)]
            for t in threads:
                t.start()
            time.sleep(4)  # every claim made its first look and waits
            early += len(codes)
            rss = max(rss, sum(web_rss(web)["workers"]) + web_rss(web)["master"])
            subscriptions = max(subscriptions, _subscriptions())
            sent: dict[str, float] = {}
            for _ in range(JOBS):
                run = requests.post(
                    f"{base}/triggers/{seed['trigger']}/run",
                    data=b'{"ref": "main"}',
                    headers={"Authorization": f"Bearer {seed['token']}"},
                    timeout=10,
                )
                answered = time.monotonic()  # the goal counts from the run's 202
                assert run.status_code == 202, run.text
                sent[run.json()["jobId"]] = answered
                time.sleep(0.25)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(got) < len(sent):
                time.sleep(0.01)
            for job_id, at in sent.items():
                latencies.append((got[job_id] - at) * 1000 if job_id in got else float("inf"))
            for t in threads:
                t.join(timeout=WAIT + 20)
            answers["200"] += codes.count(200)
            answers["204"] += codes.count(204)
            answers["other"] += len(codes) - codes.count(200) - codes.count(204)
            print(
                f"  round {round_no + 1}: {WAITERS} waiting, {len(got)}/{len(sent)} jobs reached an agent, "
                f"median {sorted(latencies)[len(latencies) // 2]:.0f} ms so far",
                flush=True,
            )
    finally:
        worker.stop()
        web.stop()
    return {
        "waiters": WAITERS,
        "latencies_ms": latencies,
        "answers": ", ".join(f"{k}×{v}" for k, v in answers.items()),
        "early": early,
        "rss_mb": rss,
        "subscriptions": subscriptions,
    }


def _subscriptions() -> int:
    """Redis subscriptions to the agents' wake-up channel (one per web process)."""
    import redis
    import redis.connection

    db = redis.connection.parse_url(REDIS).get("db", 0)
    channel = f"deplite:agent-wake:{db}".encode()  # triggers.wakeups.CHANNEL
    return int(dict(redis.Redis.from_url(REDIS).pubsub_numsub(channel)).get(channel, 0))


if __name__ == "__main__":
    from run import table

    print(table({"claim": measure(production_env())}))
