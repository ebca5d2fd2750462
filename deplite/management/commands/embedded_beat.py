"""Periodic tasks for the embedded default, where no Celery beat or broker runs.

`make run` starts this beside the web server so the sweepers and reapers in
CELERY_BEAT_SCHEDULE (lost verifications, timed-out jobs, lost agents, expired uploads)
also run on a newcomer's machine. It runs each task in-process at its interval. With
REDIS_URL set, run `celery -A deplite beat` and a worker instead.
"""

import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from deplite.celery import app

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run CELERY_BEAT_SCHEDULE's tasks in-process at their intervals (embedded default only)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run every task once and exit.")

    def handle(self, *args, once=False, **options):
        app.autodiscover_tasks(force=True)  # a worker would import every app's tasks at start
        schedule = {
            name: (entry["task"], float(entry["schedule"])) for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        }
        next_run = dict.fromkeys(schedule, 0.0)
        while True:
            now = time.monotonic()
            for name, (task, interval) in schedule.items():
                if now < next_run[name]:
                    continue
                next_run[name] = now + interval
                # apply() runs the task here, with its retries, whatever the broker setting.
                result = app.tasks[task].apply()
                if result.failed():
                    logger.error("Periodic task %s failed: %s", name, result.result)
            if once:
                return
            time.sleep(max(0.5, min(next_run.values()) - time.monotonic()))
