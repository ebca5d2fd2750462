"""`manage.py deplite_status`: the readiness checks of /readyz, plus queue depth and agents online.

Exits 1 when a check fails, so a deploy script or a cron can act on it.
"""

from __future__ import annotations

import json

import redis
from django.core.management.base import BaseCommand, CommandError

from deplite import health


class Command(BaseCommand):
    help = "Check the database, migrations and Redis, and show queued jobs, the broker queue and agents online."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of lines.")

    def handle(self, *args, **options):
        checks = health.readiness_checks()
        ok = all(c.ok for c in checks)
        state = health.queue_state() if checks and checks[0].ok else None
        try:
            broker = health.broker_queue_depth()
        except (redis.RedisError, OSError):
            broker = None
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "status": "ok" if ok else "not_ready",
                        "checks": {c.name: "ok" if c.ok else c.detail for c in checks},
                        "jobsQueued": state.queued if state else None,
                        "oldestQueuedAgeSeconds": state.oldest_queued_age if state else None,
                        "brokerQueueDepth": broker,
                        "agentsOnline": state.agents_online if state else None,
                    }
                )
            )
        else:
            for check in checks:
                self.stdout.write(f"{check.name:<22} {'ok' if check.ok else 'FAILING: ' + check.detail}")
            if state is not None:
                self.stdout.write(f"{'jobs queued':<22} {state.queued} (oldest {state.oldest_queued_age:.0f}s)")
                self.stdout.write(f"{'agents online':<22} {state.agents_online}")
            if broker is not None:
                self.stdout.write(f"{'broker queue':<22} {broker} task(s) waiting")
            elif not checks or not any(c.name == "redis" for c in checks):
                self.stdout.write(f"{'broker queue':<22} none (tasks run in-process)")
        if not ok:
            raise CommandError("Not ready: " + ", ".join(c.name for c in checks if not c.ok))
