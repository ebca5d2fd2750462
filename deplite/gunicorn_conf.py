"""gunicorn settings for the `web` process (Procfile: `gunicorn -c python:deplite.gunicorn_conf …`).

Prometheus multiprocess mode: each uvicorn worker writes its metrics to files in
PROMETHEUS_MULTIPROC_DIR and `/metrics` adds them up. That needs the directory set before any
worker imports prometheus_client, emptied when the server starts (stale files from a previous run
would be added in), and a dead worker's live gauges dropped. Set PROMETHEUS_MULTIPROC_DIR yourself
to share it with a Celery worker on the same host; otherwise a private one is made here.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from pathlib import Path

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="deplite-metrics-")

# Graceful stop: uvicorn ends long polls at once on SIGTERM (deplite/shutdown.py); anything
# else in flight gets this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))

# Idle keep-alive connections are closed after this long. A load balancer reuses its idle
# connections for up to its own idle timeout (AWS ALB 60 s, nginx upstream keepalive 60 s by
# default); if the server closes first, a request sent on the closing connection gets a 502. So it
# is above those, as nginx's own 75 s; behind a longer one (GCP's load balancer: 600 s) set it above
# that one.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))

# Whose X-Forwarded-For / X-Forwarded-Proto the uvicorn workers apply to the client address and
# scheme: the proxies Deplite trusts (DEPLITE_TRUSTED_PROXIES, as its own middleware does), and no
# one without it; gunicorn's default, FORWARDED_ALLOW_IPS or 127.0.0.1, would let any client on the
# host choose the address its rate limits are counted under. Normalised the way the settings read it
# (uvicorn takes a CIDR only in its strict form).
forwarded_allow_ips = ",".join(
    str(ipaddress.ip_network(cidr.strip(), strict=False))
    for cidr in os.environ.get("DEPLITE_TRUSTED_PROXIES", "").split(",")
    if cidr.strip()
)


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
