"""Environments (issue #20) in production shape: how soon the next deploy starts, and what a gate costs a run.

1. Hand-over: an environment with `concurrency: one` (fifo), BENCH_ENV_AGENTS (3) real agents waiting
   (`deplite-agent run`, its default long poll) on the Procfile's web line (2 processes) with a Celery worker.
   For each way a job ends — success, failure, cancel (`POST …/jobs/<id>/cancel` while its step runs),
   timeout (the reaper, `jobs_reap`, finding it past its timeout) and lost agent (the agent SIGKILLed, the
   lost-agent reaper `agents_reap_lost` failing its job; a new agent process with its credentials takes its
   place before the next one) — BENCH_ENV_JOBS (20) jobs, and the
   time from one job's `finishedAt` to the next job's `claimedAt` (the server's own stamps; the next job was
   waiting, so its claim needed the release and a wake-up): p50 / p95 / max. Target: p50 ≤ 100 ms.
   The reapers are called in the bench's own process (what beat's task runs), after moving the job's clock
   back past its timeout or the agent's silence past the lost limit: the bench does not wait an hour.
2. The run path, measured like bench/run.py (wrk, 16 connections, BENCH_ENV_ROUNDS × BENCH_SECONDS, each
   round beside the ceiling): a trigger without an environment, with an `unlimited` one, and with a
   `one`/fifo one (every run after the first waits its turn); and each one's exact query count.

Loopback only; bounded in count and time. Uses the bench database and Redis DB (bench/stack.py).

    .venv/bin/python bench/environments.py     # or: make bench BENCH_PARTS=environments
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import agent_home, shell, start_agent, start_web, start_worker  # noqa: E402

JOBS = int(os.environ.get("BENCH_ENV_JOBS", "20"))
AGENTS = int(os.environ.get("BENCH_ENV_AGENTS", "3"))
ROUNDS = int(os.environ.get("BENCH_ENV_ROUNDS", "3"))
ENDS = tuple(os.environ.get("BENCH_ENV_ENDS", "success,failure,cancel,timeout,lost agent").split(","))
TARGET_MS = 100

SEED = """
import json
from agents.models import Agent
from agents.signing import generate_secret
from orgs import services
from orgs.models import ApiToken, Organization
from orgs.scoping import Actor
from triggers.models import Environment, Job, Trigger
org, _ = Organization.objects.get_or_create(slug='bench-env', defaults={'name': 'Bench environments'})
Job.objects.filter(org=org).delete(); Agent.objects.filter(org=org).delete(); ApiToken.objects.filter(org=org).delete()
Trigger.objects.filter(org=org).delete(); Environment.objects.filter(org=org).delete()
environments = {
    kind: Environment.objects.create(org=org, name=kind.replace('_', '-'), concurrency=concurrency)
    for kind, concurrency in (('deploy', 'one'), ('one', 'one'), ('unlimited', 'unlimited'))
}
triggers = {'deploy': Trigger.objects.create(org=org, name='deploy', workflow='deploy', environment=environments['deploy'])}
for kind in ('one', 'unlimited'):
    triggers[kind] = Trigger.objects.create(org=org, name=f'run-{kind}', workflow='run', environment=environments[kind])
triggers['none'] = Trigger.objects.create(org=org, name='run-none', workflow='run')
agents = [Agent.objects.create(org=org, name=f'bench-env-{i}', secret=generate_secret()) for i in range(%d)]
_, raw = services.token_create(org=org, actor=Actor.system(), name='bench', scope_type='org')
print(json.dumps({'org': str(org.id), 'token': raw, 'triggers': {k: str(t.id) for k, t in triggers.items()},
                  'agents': [[str(a.id), a.secret] for a in agents]}))
"""

# A step that talks while it runs (so the agent reports often and hears of a cancel at once) for 20 s, or
# ends at once with $PARAMS_CODE.
WORKFLOW = """name: deploy
steps:
  - name: deploy
    run: |
      if [ "$PARAMS_MODE" = long ]; then for i in $(seq 200); do echo "tick $i"; sleep 0.1; done; fi
      exit "${PARAMS_CODE:-0}"
"""


def measure(env: dict) -> dict:
    seed = shell(env, SEED % AGENTS)
    web, base = start_web(env, workers=2)
    worker = start_worker(env)
    homes: list[Path] = []
    agents = []
    report: dict = {"jobs": JOBS, "agents": AGENTS}
    try:
        for agent_id, secret in seed["agents"]:
            homes.append(agent_home("deplite-bench-env-", {"deploy": WORKFLOW}))
            agents.append(start_agent(base, agent_id, secret, homes[-1]))
        time.sleep(3)  # every agent has sent its first heartbeat and waits in a claim
        pids = {agent_id: agent.pid for (agent_id, _), agent in zip(seed["agents"], agents, strict=True)}
        report["ends"] = {}
        for end in ENDS:
            print(f"  hand-over after {end} ({JOBS} jobs)", flush=True)
            report["ends"][end] = shell(
                env,
                "import sys; sys.path.insert(0, 'bench'); import environments; "
                f"environments.hand_overs({base!r}, {json.dumps(seed)!r}, {end!r}, {json.dumps(pids)!r})",
                timeout=JOBS * 60 + 120,
            )
    finally:
        for agent in agents:
            agent.stop()
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)
        worker.stop()
    try:
        report["run"] = run_path(env, base, seed)
    finally:
        web.stop()
        shell(
            env, f"from triggers.models import Job; Job.objects.filter(org_id={seed['org']!r}).delete(); print('{{}}')"
        )
    return report


def _replacement_agent(base: str, agent_id: str, secret: str, *, since):
    agent = start_agent(base, agent_id, secret, agent_home("deplite-bench-env-", {"deploy": WORKFLOW}))
    agent.started = since
    return agent


def hand_overs(base: str, seed_json: str, end: str, pids_json: str) -> None:
    """Runs inside `manage.py shell` (the bench's database): JOBS + 1 jobs of the environment, each ended the
    way `end` says as soon as it runs; prints the finish → next claim gaps (seconds) as JSON."""
    from datetime import timedelta

    from django.utils import timezone

    from agents.models import Agent, ServerPulse
    from agents.tasks import agents_reap_lost
    from triggers.models import Job, JobStatus
    from triggers.tasks import jobs_reap

    seed, pids = json.loads(seed_json), json.loads(pids_json)
    headers = {"Authorization": f"Bearer {seed['token']}"}
    params = {"success": {"CODE": "0"}, "failure": {"CODE": "1"}}.get(end, {"MODE": "long"})
    ids = []
    for _ in range(JOBS + 1):
        response = requests.post(
            f"{base}/triggers/{seed['triggers']['deploy']}/run",
            json={"ref": "main", "params": params},
            headers=headers,
            timeout=10,
        )
        ids.append(response.json()["jobId"])
    claimed: dict[str, datetime] = {}
    reaped: dict[str, dict] = {}  # as the reaper left them
    replacements: list = []
    deadline = time.monotonic() + JOBS * 60 + 60
    for job_id in ids:
        job = Job.objects.filter(pk=job_id)
        while time.monotonic() < deadline:  # until it runs (its claim) and, for a long step, its step started
            row = job.values("status", "claimed_at", "started_at", "agent_id").first()
            if row["status"] in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
                break
            if row["status"] == JobStatus.RUNNING and (params.get("MODE") != "long" or row["started_at"]):
                break
            time.sleep(0.005)
        claimed[job_id] = row["claimed_at"]
        if params.get("MODE") != "long" or row["status"] != JobStatus.RUNNING:
            continue
        if end == "cancel" or job_id == ids[-1]:  # the last one only ends the series
            answer = requests.post(f"{base}/api/orgs/bench-env/jobs/{job_id}/cancel", headers=headers, timeout=10)
            if answer.status_code >= 400:
                print(f"cancel answered {answer.status_code}: {answer.text[:200]}", file=sys.stderr)
        elif end == "timeout":
            long_ago = timezone.now() - timedelta(hours=3)
            job.update(started_at=long_ago, claimed_at=long_ago)
            jobs_reap()
        elif end == "lost agent":
            agent_id = str(row["agent_id"])
            os.kill(pids[agent_id], signal.SIGKILL)  # the agent is gone, its host with it
            for _ in range(20):  # a report the agent had in flight may land after the clocks were moved back
                long_ago = timezone.now() - timedelta(hours=3)
                job.update(claimed_at=long_ago)
                Agent.objects.filter(pk=agent_id).update(last_seen_at=long_ago)
                ServerPulse.objects.update(up_since=long_ago - timedelta(hours=1))  # the server was up all along
                if agents_reap_lost():
                    break
                time.sleep(0.05)
        if end in ("timeout", "lost agent"):
            reaped[job_id] = job.values("status", "finished_at").first()
        if end == "lost agent" and row["status"] == JobStatus.RUNNING and job_id != ids[-1]:
            # A new host in its place (the same agent), up and waiting before the next one is lost: the
            # hand-over measured always has a waiting agent, as with the other ways a job ends.
            agent_id = str(row["agent_id"])
            replacement = _replacement_agent(base, agent_id, dict(seed["agents"])[agent_id], since=timezone.now())
            replacements.append(replacement)
            pids[agent_id] = replacement.pid
            while (
                time.monotonic() < deadline
                and not Agent.objects.filter(pk=agent_id, last_seen_at__gt=replacement.started).exists()
            ):
                time.sleep(0.05)
    for replacement in replacements:
        replacement.stop()
    while time.monotonic() < deadline and Job.objects.filter(pk__in=ids, finished_at__isnull=True).exists():
        time.sleep(0.05)
    rows = {str(r["id"]): r for r in Job.objects.filter(pk__in=ids).values("id", "status", "finished_at")}
    rows.update(reaped)
    gaps = []
    for earlier, later in zip(ids, ids[1:], strict=False):
        finished, next_claim = rows[earlier]["finished_at"], claimed[later]
        gaps.append((next_claim - finished).total_seconds() if finished and next_claim else float("inf"))
    statuses = [rows[i]["status"] for i in ids[:-1]]
    print(json.dumps({"gaps": gaps, "statuses": {s: statuses.count(s) for s in set(statuses)}}))


QUERY_COUNT = """
import json
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_HOST='127.0.0.1', HTTP_AUTHORIZATION='Bearer %s')
counts = {}
for kind, trigger_id in %s.items():
    for _ in range(3):  # warm: the token's last-used write, the connection's prepared statements
        client.post(f'/triggers/{trigger_id}/run', data='{"ref": "main"}', content_type='application/json')
    with CaptureQueriesContext(connection) as ctx:
        assert client.post(f'/triggers/{trigger_id}/run', data='{"ref": "main"}',
                           content_type='application/json').status_code == 202
    counts[kind] = len(ctx.captured_queries)
print(json.dumps(counts))
"""


def run_path(env: dict, base: str, seed: dict) -> dict:
    import run as bench_run

    triggers = {kind: seed["triggers"][kind] for kind in ("none", "unlimited", "one")}
    queries = shell(env, QUERY_COUNT % (seed["token"], json.dumps(triggers)))
    paths = {"ceiling": f"{base}/bench/ceiling", **{k: f"{base}/triggers/{t}/run" for k, t in triggers.items()}}
    for url in paths.values():  # warm both web processes
        for _ in range(20):
            requests.post(url, data='{"ref": "main"}', headers={"Authorization": f"Bearer {seed['token']}"}, timeout=10)
    rounds: dict[str, list[dict]] = {name: [] for name in paths}
    for round_no in range(ROUNDS):
        for name, url in paths.items():
            r = bench_run.wrk(url, token=seed["token"], body='{"ref": "main"}')
            rounds[name].append(r)
            print(f"  round {round_no + 1} {name:<10} {r['rps']:7.1f} req/s  p50 {r['p50']:6.1f} ms", flush=True)
    return {"queries": queries, "rounds": rounds}


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


def table(report: dict) -> list[str]:
    lines = [
        "",
        f"| next job of an environment claimed after the previous one ends ({report['jobs']} jobs each, "
        f"{report['agents']} waiting agents, 2 web processes) | p50 ms | p95 ms | max ms | p50 ≤ {TARGET_MS} ms "
        "| how the jobs ended |",
        "|---|---|---|---|---|---|",
    ]
    for end, got in report.get("ends", {}).items():
        gaps = got["gaps"]
        p50 = _pct(gaps, 50) * 1000
        ended = ", ".join(f"{s}×{n}" for s, n in sorted(got["statuses"].items()))
        lines.append(
            f"| {end} | {p50:.0f} | {_pct(gaps, 95) * 1000:.0f} | {max(gaps) * 1000:.0f} "
            f"| {'yes' if p50 <= TARGET_MS else 'NO'} | {ended} |"
        )
    if "run" in report:
        run = report["run"]
        ceiling = run["rounds"]["ceiling"]
        names = {
            "none": "without an environment",
            "unlimited": "environment, concurrency unlimited",
            "one": "environment, concurrency one (fifo: every run after the first waits)",
        }
        lines += [
            "",
            f"| POST /triggers/<id>/run ({ROUNDS} rounds, bench/run.py's wrk) | queries | req/s per round "
            "| p50 ms (median) | × ceiling (median) | errors |",
            "|---|---|---|---|---|---|",
        ]
        for kind, name in names.items():
            rounds = run["rounds"][kind]
            ratios = [r["rps"] / c["rps"] for r, c in zip(rounds, ceiling, strict=True)]
            per_round = ", ".join(f"{r['rps']:.0f}" for r in rounds)
            lines.append(
                f"| {name} | {run['queries'][kind]} | {per_round} "
                f"| {statistics.median(r['p50'] for r in rounds):.1f} | {statistics.median(ratios):.2f} "
                f"| {sum(r['errors'] for r in rounds)} |"
            )
        extra = {k: run["queries"][k] - run["queries"]["none"] for k in ("unlimited", "one")}
        lines.append(
            f"\nqueries: Django's count for one run after warm-up (the token's query included); an environment adds "
            f"{extra['unlimited']} (unlimited) and {extra['one']} (one) — the issue allows 2."
        )
    return lines


if __name__ == "__main__":
    from stack import flush_redis, prepare_database, production_env

    env = production_env()
    prepare_database(env)
    flush_redis()
    print("\n".join(table(measure(env))))
