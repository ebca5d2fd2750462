"""Job finish → message received by a (fake, local) Slack API, with a real Celery worker.

Starts a Celery worker on PostgreSQL + Redis with production settings, a local fake of
Slack's Web API (pytest-httpserver, the same fake the tests use, here refusing with a 429 +
Retry-After any message that comes less than 0.8 s after the previous one to its channel,
like Slack's ~1 message/second/channel limit), and finishes jobs through the real service
(`job_finish`, so `job_finished` fires after commit exactly as when an agent reports).

1. Latency: BENCH_ROUNDS jobs, one at a time, each to its own channel: p50 / p90 / max of
   finish → the fake receiving chat.postMessage.
2. Burst: BENCH_BURST results finished at once, all to ONE channel: how long until all are
   delivered, how many chat.postMessage calls that took, and how many 429s (a retry storm
   would show as calls ≫ messages).

Loopback only; bounded in count and time (BENCH_TIMEOUT seconds per phase).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/deplite_bench_notify REDIS_URL=redis://127.0.0.1:6379/9 \\
      .venv/bin/python bench/notify_latency.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from api_throughput import prepare, production_env  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))
BURST = int(os.environ.get("BENCH_BURST", "100"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "240"))
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
TOKEN = "xoxb-bench"  # noqa: S105 (the fake server's token)
MIN_GAP = 0.8  # the fake's per-channel limit


def start_fake():
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    from pytest_httpserver import HTTPServer

    from tests.chat_fakes import FakeSlack

    class LimitedSlack(FakeSlack):
        """Answers 429 (Retry-After: 1) to a post that comes too soon after the channel's last one."""

        last: dict = {}
        limited = 0

        def handle(self, request):
            if request.path.endswith("chat.postMessage"):
                channel = (request.get_json(silent=True) or {}).get("channel", "")
                now = time.time()
                with self.lock:
                    too_soon = now - self.last.get(channel, 0) < MIN_GAP
                    if too_soon:
                        self.rate_limit[channel] = 1
                        self.retry_after = 1
                        LimitedSlack.limited += 1
                    else:
                        self.last[channel] = now
            return super().handle(request)

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    return server, LimitedSlack(server, tokens={TOKEN})


def main() -> None:
    server, fake = start_fake()
    env = production_env(REDIS_URL=REDIS, SLACK_API_URL=fake.url, CELERY_TRACE_LOG_LEVEL="WARNING")
    prepare(env)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "deplite.settings"
    import django

    django.setup()
    from django.utils import timezone

    from integrations.models import Installation, OutboxMessage
    from orgs.models import Organization
    from orgs.scoping import Actor
    from triggers import services
    from triggers.models import Job, JobStatus, Trigger

    org = Organization.objects.get(slug="bench")
    Job.objects.filter(org=org).delete()
    Installation.objects.filter(provider="slack", external_id="TBENCH").delete()
    Installation.objects.create(org=org, provider="slack", external_id="TBENCH", name="bench", bot_token=TOKEN)

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "deplite", "worker", "-c", "2", "--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        time.sleep(6)  # worker start-up

        def make_job(channel: str, name: str) -> Job:
            trigger, _ = Trigger.objects.update_or_create(
                org=org,
                name=name,
                defaults={
                    "workflow": "deploy",
                    "notify_provider": "slack",
                    "notify_team_id": "TBENCH",
                    "notify_channel_id": channel,
                    "notify_on": "always",
                },
            )
            run = services.trigger_run(
                trigger=trigger, actor=Actor.system("bench"), source="api", ref="main", params={}
            )
            Job.objects.filter(pk=run.job_id).update(
                status=JobStatus.RUNNING, claimed_at=timezone.now(), started_at=timezone.now()
            )
            return Job.objects.get(pk=run.job_id)

        # 1. latency, one job at a time, each to its own channel
        latencies = []
        for i in range(ROUNDS):
            channel = f"CLAT{i:04d}"
            job = make_job(channel, f"lat-{i}")
            started = time.time()
            services.job_finish(job=job, status="succeeded", exit_code=0, error=None)
            fake.wait_for(lambda c=channel: fake.in_channel(c), timeout=TIMEOUT, interval=0.005)
            latencies.append(fake.in_channel(channel)[0]["received_at"] - started)
        latencies.sort()
        p50 = statistics.median(latencies)
        p90 = latencies[int(len(latencies) * 0.9) - 1]
        print(
            f"latency job finish → message received ({ROUNDS} jobs): p50 {p50 * 1000:.0f} ms, "
            f"p90 {p90 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
        )

        # 2. a burst of results to one channel
        jobs = [make_job("CBURST", f"burst-{i}") for i in range(BURST)]
        calls_before, limited_before = len(fake.posts("CBURST")), fake.limited
        started = time.time()
        for job in jobs:
            services.job_finish(job=job, status="failed", exit_code=1, error="boom")
        finished_at = time.time()
        fake.wait_for(lambda: len(fake.in_channel("CBURST")) >= BURST, timeout=TIMEOUT, interval=0.2)
        done = time.time()
        received = sorted(m["received_at"] for m in fake.in_channel("CBURST"))
        gaps = [b - a for a, b in zip(received, received[1:], strict=False)]
        calls = len(fake.posts("CBURST")) - calls_before
        sent = OutboxMessage.objects.filter(job__in=jobs, status="sent").count()
        attempts = sum(OutboxMessage.objects.filter(job__in=jobs).values_list("attempts", flat=True))
        print(
            f"burst of {BURST} results to one channel: finished in {finished_at - started:.1f} s; "
            f"all {len(received)} messages received {done - started:.1f} s after the first finish; "
            f"{sent} deliveries sent; {calls} chat.postMessage calls, {attempts} attempts, "
            f"{fake.limited - limited_before} answered 429; median gap {statistics.median(gaps):.2f} s, "
            f"min gap {min(gaps):.2f} s"
        )
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(20)
        server.stop()


if __name__ == "__main__":
    main()
