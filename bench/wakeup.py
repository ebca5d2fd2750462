"""A new job reaching an agent that waits in its long poll, on one web process: the two wake-up paths.

- dispatch task → waiting claim: a job handed to `job_enqueue_dispatch` without its org (a Celery worker
  runs `job_dispatch`, which publishes the wake-up), timed from the enqueue to the waiting signed claim's
  answer carrying it. tests/agents/test_claim_concurrency.py proves the claim gets it; this is how fast.
- run → real agent: the agent as customers run it (`deplite-agent run`, its default 30 s long poll) waits;
  a job run through the run endpoint, timed from the job's createdAt to its claimedAt (the server's own
  stamps). tests/e2e/test_dispatch.py proves the agent gets it; this is how fast.

The tests once asserted these under 1 s and 2 s; the table shows those limits beside the numbers.
Loopback only; BENCH_WAKEUP_JOBS (10) jobs per path, a timeout on every wait.

    .venv/bin/python bench/wakeup.py     # or as part of `make bench`
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import agent_home, shell, start_agent, start_web, start_worker  # noqa: E402

JOBS = int(os.environ.get("BENCH_WAKEUP_JOBS", "10"))
# The limits the tests asserted before issue 19 moved the measurement here (seconds).
DISPATCH_LIMIT, AGENT_LIMIT = 1.0, 2.0

SEED = """
import json
from agents.models import Agent
from agents.signing import generate_secret
from orgs import services
from orgs.models import ApiToken, Organization
from orgs.scoping import Actor
from triggers.models import Job, Trigger
org, _ = Organization.objects.get_or_create(slug='bench-wakeup', defaults={'name': 'Bench wake-up'})
Job.objects.filter(org=org).delete(); Agent.objects.filter(org=org).delete(); ApiToken.objects.filter(org=org).delete()
claimer = Agent.objects.create(org=org, name='bench-claimer', secret=generate_secret())
runner = Agent.objects.create(org=org, name='bench-agent', secret=generate_secret())
t, _ = Trigger.objects.get_or_create(org=org, name='bench-wakeup', defaults={'workflow': 'ping'})
_, raw = services.token_create(org=org, actor=Actor.system(), name='bench', scope_type='org')
print(json.dumps({'org': str(org.id), 'trigger': str(t.id), 'token': raw,
                  'claimer': [str(claimer.id), claimer.secret], 'runner': [str(runner.id), runner.secret]}))
"""


def measure(env: dict) -> dict:
    seed = shell(env, SEED)
    web, base = start_web(env, workers=1)
    worker = start_worker(env)
    try:
        dispatch = shell(
            env,
            "import sys; sys.path.insert(0, 'bench'); import wakeup; "
            f"wakeup.dispatch_latencies({base!r}, {json.dumps(seed)!r})",
            timeout=JOBS * 30 + 60,
        )
        agent = agent_latencies(base, seed)
    finally:
        worker.stop()
        web.stop()
    return {"jobs": JOBS, "dispatch": dispatch, "agent": agent}


def dispatch_latencies(base: str, seed_json: str) -> None:
    """Runs inside `manage.py shell` (the bench's database): for each job, a signed claim waits, then
    the job is created and handed to the dispatch task; prints the seconds from the enqueue to the answer."""
    from claim_longpoll import signed_claim

    from triggers.models import Job, Trigger
    from triggers.services import job_enqueue_dispatch

    seed = json.loads(seed_json)
    trigger = Trigger.objects.get(pk=seed["trigger"])
    agent_id, secret = seed["claimer"]
    latencies: list[float] = []
    early = 0
    early_answers: list[int | None] = []
    for _ in range(JOBS):
        answer: dict = {}

        def claim(answer=answer):
            response = signed_claim(base, agent_id, secret, wait=20)
            answer["at"] = time.monotonic()
            answer["status"] = response.status_code
            answer["id"] = response.json()["id"] if response.status_code == 200 else None

        thread = threading.Thread(target=claim, daemon=True)
        thread.start()
        time.sleep(1.0)  # its first look is done and found nothing: it waits for a wake-up
        if answer:
            early += 1
            early_answers.append(answer.get("status"))
        job = Job.objects.create(
            org_id=seed["org"], trigger=trigger, trigger_name=trigger.name, workflow=trigger.workflow, ref="main"
        )
        job_enqueue_dispatch(job_id=job.pk)  # no org at hand: through the broker to the worker
        enqueued = time.monotonic()
        thread.join(25)
        latencies.append(answer["at"] - enqueued if answer.get("id") == str(job.pk) else float("inf"))
    Job.objects.filter(org_id=seed["org"]).delete()
    print(json.dumps({"latencies": latencies, "early": early, "early_answers": early_answers}))


def agent_latencies(base: str, seed: dict) -> dict:
    home = agent_home("deplite-bench-wakeup-", {"ping": "name: ping\nsteps:\n  - name: Ping\n    run: echo pong\n"})
    agent = start_agent(base, *seed["runner"], home)
    headers = {"Authorization": f"Bearer {seed['token']}"}
    latencies: list[float] = []
    statuses: list[str] = []
    try:
        for _ in range(JOBS):
            time.sleep(1.5)  # the agent is (back) in its long poll, past its first look at the queue
            run = requests.post(f"{base}/triggers/{seed['trigger']}/run", data="{}", headers=headers, timeout=10)
            job_id = run.json()["jobId"]
            job: dict = {}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and job.get("status") not in ("succeeded", "failed", "cancelled"):
                time.sleep(0.1)
                job = requests.get(f"{base}/api/orgs/bench-wakeup/jobs/{job_id}", headers=headers, timeout=10).json()
            statuses.append(job.get("status", "?"))
            claimed = job.get("claimedAt")
            latencies.append(_seconds(job["createdAt"], claimed) if claimed else float("inf"))
    finally:
        agent.stop()
        shutil.rmtree(home, ignore_errors=True)
    return {"latencies": latencies, "statuses": statuses}


def _seconds(earlier: str, later: str) -> float:
    parse = datetime.fromisoformat
    return (parse(later.replace("Z", "+00:00")) - parse(earlier.replace("Z", "+00:00"))).total_seconds()


def table(report: dict) -> list[str]:
    def row(name: str, values: list[float], limit: float) -> str:
        ordered = sorted(values)
        over = sum(v >= limit for v in ordered)
        median = ordered[len(ordered) // 2]
        return f"| {name} | {median * 1000:.0f} | {ordered[-1] * 1000:.0f} | {limit:.0f} | {over} of {len(ordered)} |"

    dispatch, agent = report["dispatch"], report["agent"]
    statuses = ", ".join(f"{s}×{agent['statuses'].count(s)}" for s in sorted(set(agent["statuses"])))
    return [
        "",
        f"| a waiting agent gets a new job ({report['jobs']} jobs each, 1 web process) | median ms | max ms "
        "| former test limit, s | at or over it |",
        "|---|---|---|---|---|",
        row("dispatch task via a Celery worker → waiting claim answers", dispatch["latencies"], DISPATCH_LIMIT),
        row("run → the real agent's claim (createdAt → claimedAt)", agent["latencies"], AGENT_LIMIT),
        "",
        f"real agent's jobs: {statuses}; claims that answered before their job existed: {dispatch['early']}"
        + (f" (HTTP {', '.join(map(str, dispatch.get('early_answers', [])))})." if dispatch["early"] else "."),
    ]


if __name__ == "__main__":
    from run import table as report_table
    from stack import prepare_database, production_env

    env = production_env()
    prepare_database(env)
    print(report_table({"wakeup": measure(env)}))
