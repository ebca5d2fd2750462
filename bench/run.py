"""`make bench`: every hot-path benchmark against the production shape, in one table.

Production shape: the Procfile's web line (gunicorn, 2 workers), PostgreSQL and Redis on
loopback, wrk as the load generator (no Python client competing for the cores). Each
throughput round runs the ceiling (bench/ceiling.py) and every hot path back to back, and
each path is reported as a ratio to the ceiling of its own round. Then: list timings at
100,000 jobs, the claim wake-up latency with 300 waiting agents on one web process (web
RSS), how fast one waiting agent gets a new job through the dispatch task and as the real
agent (bench/wakeup.py), how soon an environment's next deploy starts after each way a job ends and what
its gate costs a run (bench/environments.py), how fast a chat command and an approval click are answered
and the approved job is claimed by a waiting agent (bench/chat_stack.py), how long a 20 MB step's log takes to be stored after the step ends (agent CPU), a
normal request's latency while 16 slow readers and 30,000-header requests abuse the server, and one
schedules tick at 10,000 enabled schedules (bench/schedules.py).

Bounded: BENCH_ROUNDS (5) rounds of BENCH_SECONDS (6) s per path, fixed request and
job counts elsewhere, a timeout on every wait. Uses its own database (deplite_bench) and
Redis DB 9 (flushed at start).

    make bench                       # or: .venv/bin/python bench/run.py [throughput lists claim wakeup environments chat logs abuse schedules]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chat_stack  # noqa: E402
import claim_longpoll  # noqa: E402
import environments  # noqa: E402
import lists  # noqa: E402
import schedules  # noqa: E402
import wakeup  # noqa: E402
import web_abuse  # noqa: E402
from stack import (  # noqa: E402
    ROOT,
    agent_home,
    cpu_seconds,
    flush_redis,
    metric_total,
    prepare_database,
    production_env,
    shell,
    start_agent,
    start_web,
)

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "6"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
LOG_MB = 20

SEED = """
import json
from orgs.models import Organization, ApiToken
from orgs import services
from orgs.scoping import Actor
from storage.models import StorageBinding
from storage import services as storage_services
from triggers.models import Trigger, Job
org, _ = Organization.objects.get_or_create(slug='bench', defaults={'name': 'Bench'})
ApiToken.objects.filter(org=org).delete()
_, raw = services.token_create(org=org, actor=Actor.system(), name='bench', scope_type='org')
Job.objects.filter(org=org).delete()
trigger, _ = Trigger.objects.get_or_create(org=org, name='bench-run', defaults={'workflow': 'deploy'})
StorageBinding.objects.filter(org=org).delete()
binding = storage_services.binding_create(org=org, actor=Actor.system(), name='bench', endpoint='http://127.0.0.1:9',
    bucket='bench', access_key='AKIABENCH', secret_key='bench-secret', region='us-east-1', path_style=True)
print(json.dumps({'token': raw, 'trigger': str(trigger.id), 'binding': str(binding.id), 'org': str(org.id)}))
"""


def wrk(url: str, *, token: str, body: str, seconds: int = SECONDS) -> dict:
    env = {
        **os.environ,
        "BENCH_TOKEN": token,
        "BENCH_BODY": body,
        "BENCH_METHOD": "POST",
        "BENCH_RUN": uuid.uuid4().hex[:12],
    }
    script = str(ROOT / "bench" / "wrk_request.lua")
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", script, url],
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds + 60,
        check=True,
    ).stdout
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)),
        "p99": _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)),
        "requests": requests_done,
        "errors": (int(non2xx.group(1)) if non2xx else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(\w+)", text)
    if match is None:  # wrk prints -nan when no request finished
        return float("nan")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def throughput(env: dict, base: str) -> dict:
    seed = shell(env, SEED)
    paths = {
        "ceiling (bench/ceiling.py)": (f"{base}/bench/ceiling", '{"ref": "main"}'),
        "POST /triggers/<id>/run": (f"{base}/triggers/{seed['trigger']}/run", '{"ref": "main"}'),
        "POST …/files/presign-upload": (
            f"{base}/api/orgs/bench/files/presign-upload",
            json.dumps({"bindingId": seed["binding"], "fileName": "build.tar.gz", "size": 1048576}),
        ),
    }
    for url, body in paths.values():  # warm both workers (imports, pools, boto3 client)
        for _ in range(20):
            requests.post(url, data=body, headers={"Authorization": f"Bearer {seed['token']}"}, timeout=10)
    count_jobs = (
        "import json; from triggers.models import Job;"
        f"print(json.dumps({{'jobs': Job.objects.filter(trigger_id='{seed['trigger']}').count()}}))"
    )
    jobs_before = shell(env, count_jobs)["jobs"]
    answered_before = metric_total(base, "deplite_run_request_seconds_count", code="202")
    results: dict[str, list[dict]] = {name: [] for name in paths}
    for round_no in range(ROUNDS):
        for name, (url, body) in paths.items():
            results[name].append(wrk(url, token=seed["token"], body=body))
            r = results[name][-1]
            print(
                f"  round {round_no + 1} {name:<30} {r['rps']:7.1f} req/s  p50 {r['p50']:6.1f} ms"
                f"  p99 {r['p99']:6.1f} ms  errors {r['errors']}",
                flush=True,
            )
    run_answers = sum(r["requests"] - r["errors"] for r in results["POST /triggers/<id>/run"])
    jobs = shell(env, count_jobs)["jobs"] - jobs_before
    # Every 202 the server sent (its own count, in-flight ones included) must be exactly one job row.
    answered = metric_total(base, "deplite_run_request_seconds_count", code="202") - answered_before
    return {"results": results, "run_202": run_answers, "run_202_server": int(answered), "run_jobs": jobs}


def log_ingest(env: dict, base: str) -> dict:
    """A real agent runs one step printing 20 MB; from the step's end to the job's finish
    (the agent reports `finish` only after every log event was accepted)."""
    seed = shell(
        env,
        "import json; from orgs.models import Organization; from agents.models import Agent;"
        "from agents.signing import generate_secret; from triggers.models import Trigger, Job;"
        "from orgs import services; from orgs.scoping import Actor; from orgs.models import ApiToken;"
        "org, _ = Organization.objects.get_or_create(slug='bench-logs', defaults={'name': 'Bench logs'});"
        "Job.objects.filter(org=org).delete(); Agent.objects.filter(org=org).delete(); ApiToken.objects.filter(org=org).delete();"
        "agent = Agent.objects.create(org=org, name='bench-logs', secret=generate_secret());"
        "t, _ = Trigger.objects.get_or_create(org=org, name='bench-logs', defaults={'workflow': 'big'});"
        "_, raw = services.token_create(org=org, actor=Actor.system(), name='bench', scope_type='org');"
        "print(json.dumps({'trigger': str(t.id), 'agent': str(agent.id), 'secret': agent.secret, 'token': raw}))",
    )
    lines = LOG_MB * 1024 * 1024 // 100  # 100-byte lines
    home = agent_home(
        "deplite-bench-agent-",
        {
            "big": "name: big\nsteps:\n  - name: print\n"
            f"    run: python3 -c \"import sys; sys.stdout.write(('x' * 99 + '\\\\n') * {lines})\"\n"
        },
    )
    agent = start_agent(base, seed["agent"], seed["secret"], home)
    headers = {"Authorization": f"Bearer {seed['token']}"}
    try:
        time.sleep(3)  # the agent has sent its first heartbeat and waits in a claim
        cpu_before = cpu_seconds(agent.pid)
        job_id = requests.post(f"{base}/triggers/{seed['trigger']}/run", data="{}", headers=headers, timeout=10).json()[
            "jobId"
        ]
        deadline = time.monotonic() + 120
        job = {}
        while time.monotonic() < deadline:
            job = requests.get(f"{base}/api/orgs/bench-logs/jobs/{job_id}", headers=headers, timeout=10).json()
            if job.get("status") in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.2)
        cpu = cpu_seconds(agent.pid) - cpu_before
    finally:
        agent.stop()
        shutil.rmtree(home, ignore_errors=True)
    stored = shell(
        env,
        f"import json; from triggers.models import Job; j = Job.objects.get(pk='{job_id}');"
        "print(json.dumps({'bytes': j.log_bytes, 'truncated': j.log_truncated}))",
    )
    from datetime import datetime

    step_end = datetime.fromisoformat(job["steps"][0]["finishedAt"].replace("Z", "+00:00"))
    step_start = datetime.fromisoformat(job["steps"][0]["startedAt"].replace("Z", "+00:00"))
    finished = datetime.fromisoformat(job["finishedAt"].replace("Z", "+00:00"))
    return {
        "status": job["status"],
        "bytes": stored["bytes"],
        "truncated": stored["truncated"],
        "step_seconds": (step_end - step_start).total_seconds(),
        "after_step_end": (finished - step_end).total_seconds(),
        "agent_cpu": cpu,
    }


def main(parts: list[str]) -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: `apt-get install -y wrk` (make bench installs it when run as root).")
    env = production_env()
    prepare_database(env)
    flush_redis()
    report: dict = {}
    web, base = start_web(env, workers=2)
    try:
        if "throughput" in parts:
            print("throughput:", flush=True)
            report["throughput"] = throughput(env, base)
        if "lists" in parts:
            print("lists at 100,000 jobs:", flush=True)
            report["lists"] = lists.measure(env, base)
        if "logs" in parts:
            print("log ingest:", flush=True)
            report["logs"] = log_ingest(env, base)
        if "abuse" in parts:
            print("a normal request under abuse (slow readers, 30,000-header requests):", flush=True)
            report["abuse"] = web_abuse.measure(env, base)
    finally:
        web.stop()
    # The ceiling's view enqueues a dispatch task per request (bench/ceiling.py), thousands of them: a
    # later part's Celery worker would work through that backlog before its own tasks (the wake-up part's
    # dispatch then timed out every time in a whole run, never when run alone).
    flush_redis()
    if "claim" in parts:
        print("claim wake-up (300 waiting agents, one web process):", flush=True)
        report["claim"] = claim_longpoll.measure(env)
    if "wakeup" in parts:
        print("a waiting agent gets a new job (the dispatch task, the real agent):", flush=True)
        report["wakeup"] = wakeup.measure(env)
    if "schedules" in parts:
        print(f"schedules tick at {schedules.COUNT:,} enabled schedules:", flush=True)
        report["schedules"] = schedules.measure(env)
    if "environments" in parts:
        print(
            "environments: the next deploy's start after each way a job ends, and a gate's cost to a run:", flush=True
        )
        report["environments"] = environments.measure(env)
    if "chat" in parts:
        print(
            "chat console: a slash command and an approval click answered, click → claimed by a waiting agent:",
            flush=True,
        )
        report["chat"] = chat_stack.measure(env)
    flush_redis()
    print()
    print(table(report))


def table(report: dict) -> str:
    lines = [
        f"Deplite bench — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"Procfile web ({production_shape()}), PostgreSQL + Redis on loopback",
        "",
    ]
    if "throughput" in report:
        t = report["throughput"]
        lines += [
            f"| hot path ({CONNECTIONS} connections, {ROUNDS}×{SECONDS} s) | req/s per round | p50 ms (median) "
            "| p99 ms per round | p99 ms, worst round | × ceiling (median) | errors |",
            "|---|---|---|---|---|---|---|",
        ]
        ceiling = t["results"]["ceiling (bench/ceiling.py)"]
        for name, rounds in t["results"].items():
            ratios = [r["rps"] / c["rps"] for r, c in zip(rounds, ceiling, strict=True)]
            per_round = ", ".join(f"{r['rps']:.0f}" for r in rounds)
            p99_per_round = ", ".join(f"{r['p99']:.0f}" for r in rounds)
            lines.append(
                f"| {name} | {per_round} "
                f"| {statistics.median(r['p50'] for r in rounds):.1f} | {p99_per_round} "
                f"| {max(r['p99'] for r in rounds):.1f} "
                f"| {statistics.median(ratios):.2f} | {sum(r['errors'] for r in rounds)} |"
            )
        lines.append(
            f"\nrun: {t['run_202_server']} answers 202 sent (the server's own count, /metrics), {t['run_jobs']} job "
            f"rows created{'' if t['run_202_server'] == t['run_jobs'] else ' — MISMATCH'}; wrk counted "
            f"{t['run_202']} (not the requests still in flight when it stops)."
        )
    if "claim" in report:
        c = report["claim"]
        lat = sorted(c["latencies_ms"])
        lines += [
            "",
            f"| trigger → agent start ({c['waiters']} waiting claims, 1 web process, {len(lat)} jobs) | ms |",
            "|---|---|",
            f"| p50 | {_pct(lat, 50):.0f} |",
            f"| p90 | {_pct(lat, 90):.0f} |",
            f"| p99 | {_pct(lat, 99):.0f} |",
            f"| max | {lat[-1]:.0f} |",
            f"| web RSS, {c['waiters']} waiting (MB) | {c['rss_mb']:.0f} |",
            f"| Redis subscriptions on the wake-up channel, {c['waiters']} waiting | {c['subscriptions']} |",
            "",
            f"claim answers: {c['answers']}; claims that returned before their job: {c['early']}.",
        ]
    if "wakeup" in report:
        lines += wakeup.table(report["wakeup"])
    if "environments" in report:
        lines += environments.table(report["environments"])
    if "chat" in report:
        lines += chat_stack.table(report["chat"])
    if "lists" in report:
        li = report["lists"]
        lines += [
            "",
            f"| list | server ms, median, {li['small']:,} jobs | server ms, median, {li['jobs']:,} jobs "
            f"| server ms, p95, {li['jobs']:,} jobs | full answer over loopback ms, median, {li['jobs']:,} jobs |",
            "|---|---|---|---|---|",
        ]
        for name, (small, median, p95, answer) in li["timings"].items():
            lines.append(f"| {name} | {small:.1f} | {median:.1f} | {p95:.1f} | {answer:.1f} |")
        lines.append("\nserver time: Django's own time for the request, from its `Server-Timing: app;dur=` header.")
    if "abuse" in report:
        lines += web_abuse.table(report["abuse"])
    if "schedules" in report:
        lines += schedules.table(report["schedules"])
    if "logs" in report:
        g = report["logs"]
        lines += [
            "",
            f"log ingest: a step printing {LOG_MB} MB ({g['step_seconds']:.1f} s) is stored {g['after_step_end']:.2f} s "
            f"after the step's end ({g['bytes']:,} bytes, job {g['status']}); agent CPU {g['agent_cpu']:.1f} s.",
        ]
    return "\n".join(lines)


def _pct(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(pct / 100 * len(values) + 0.5) - 1))
    return values[k]


def production_shape() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            worker = re.search(r"-k (\S+)", line)
            return (
                f"gunicorn, {worker.group(1) if worker else 'sync'} workers; deplite/asgi.py: the long poll on the "
                "event loop, every other request in the WSGI thread pool"
            )
    return "?"


if __name__ == "__main__":
    main(
        sys.argv[1:] or ["throughput", "lists", "claim", "wakeup", "environments", "chat", "logs", "abuse", "schedules"]
    )
