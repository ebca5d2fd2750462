"""gunicorn settings for the `web` process (Procfile: `gunicorn -c python:deplite.gunicorn_conf …`).

Prometheus multiprocess mode: each uvicorn worker writes its metrics to files in
PROMETHEUS_MULTIPROC_DIR and `/metrics` adds them up. That needs the directory set before any
worker imports prometheus_client, emptied when the server starts (stale files from a previous run
would be added in), and a dead worker's live gauges dropped. Set PROMETHEUS_MULTIPROC_DIR yourself
to share it with a Celery worker on the same host; otherwise a private one is made here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="deplite-metrics-")

# Graceful stop: uvicorn ends long polls at once on SIGTERM (deplite/shutdown.py); anything
# else in flight gets this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))


def on_starting(server) -> None:
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if directory.exists():
        for child in directory.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    directory.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
