"""`manage.py deplite_status`: the readiness checks of /readyz, plus queue depth and agents online.

Exits 1 when a check fails, so a deploy script or a cron can act on it.
"""

from __future__ import annotations

import json

import redis
from django.core.management.base import BaseCommand, CommandError

from deplite import extensions, health


class Command(BaseCommand):
    help = "Check the database, migrations and Redis, and show queued jobs, the broker queue and agents online."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of lines.")

    def handle(self, *args, **options):
        checks = health.readiness_checks()
        ok = all(c.ok for c in checks)
        state = extensions.metrics_state() if checks and checks[0].ok else None
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
                        "state": state,
                        "broker_queue_depth": broker,
                    }
                )
            )
        else:
            for check in checks:
                self.stdout.write(f"{check.name:<32} {'ok' if check.ok else 'FAILING: ' + check.detail}")
            for name, value in (state or {}).items():
                self.stdout.write(f"{name:<32} {value:g}")
            if broker is not None:
                self.stdout.write(f"{'broker_queue_depth':<32} {broker}")
            elif not any(c.name == "redis" for c in checks):
                self.stdout.write(f"{'broker_queue_depth':<32} none (tasks run in-process)")
        if not ok:
            raise CommandError("Not ready: " + ", ".join(c.name for c in checks if not c.ok))
