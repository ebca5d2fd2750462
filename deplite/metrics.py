"""Prometheus metrics: their definitions and the registry a scrape reads (the view is deplite/metrics_endpoint.py).

Counters and histograms are recorded by the process that sees the event (a web worker, a Celery
worker). With `PROMETHEUS_MULTIPROC_DIR` set (gunicorn: `deplite/gunicorn_conf.py` sets and cleans
it), every process writes its numbers there and a scrape of any web worker adds them all up
(prometheus_client's multiprocess mode). Without it (the embedded default, a single process) the
numbers live in the process. The gauges that describe state (queued jobs, their age, agents
online) are read from the database at scrape time — it is the source of truth, and no process has
to keep them up to date — by readers each app registers in its ready()
(`deplite.extensions.register_metrics_state`).

Labels are bounded sets (a source, a result, a task name): never an org, a job or a trigger.

Adding a metric: define it here, record it where the event happens, preferably after commit
(`transaction.on_commit(partial(COUNTER.labels(...).inc))`) so a rolled-back write is not counted.
"""

from __future__ import annotations

import logging
import os

from django.db import DatabaseError
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from deplite import extensions

logger = logging.getLogger(__name__)

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
if MULTIPROCESS:
    # prometheus_client writes there from the first increment on; a missing directory would fail it.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# --- jobs -----------------------------------------------------------------------------------------
JOBS_CREATED = Counter(
    "deplite_jobs_created", "Jobs created, by source (api, webhook, slack, discord, rerun, …).", ["source"]
)
JOBS_FINISHED = Counter(
    "deplite_jobs_finished", "Jobs that reached a final state, by result and source.", ["result", "source"]
)
RUN_REQUEST_SECONDS = Histogram(
    "deplite_run_request_seconds",
    "Latency of the run endpoint (POST /triggers/<id>/run), by HTTP status.",
    ["code"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CLAIM_WAKEUP_SECONDS = Histogram(
    "deplite_claim_wakeup_seconds",
    "For a job handed to an agent that was already waiting in a long poll: seconds from the job "
    "being queued to the claim answer.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
JOBS_QUEUE_WAIT_SECONDS = Histogram(
    "deplite_jobs_queue_wait_seconds",
    "For every job an agent claims: seconds from when it could be claimed to the claim (the fleet's queue "
    "wait; the insights' agents section shows its p50/p95 per label).",
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0),
)
LOG_BYTES_INGESTED = Counter("deplite_job_log_bytes_ingested", "Job log bytes accepted from agents (after the cap).")

# --- storage ----------------------------------------------------------------------------------------
UPLOAD_VERIFICATIONS = Counter(
    "deplite_upload_verifications",
    "Upload verifications, by outcome: available, failed, or retried (storage unreachable).",
    ["outcome"],
)

# --- notifications ------------------------------------------------------------------------------------
# Recorded where a delivery attempt ends (the notifications app): provider slack|discord, outcome
# the attempt's result (sent, failed, unchanged, not_owed) or "retried" when it raises to retry.
NOTIFICATION_DELIVERIES = Counter(
    "deplite_notification_deliveries",
    "Notification delivery attempts, by provider (slack, discord) and outcome (sent, failed, retried, …).",
    ["provider", "outcome"],
)

# --- background -----------------------------------------------------------------------------------------
CELERY_TASK_FAILURES = Counter(
    "deplite_celery_task_failures", "Celery tasks that ended in an exception (after their retries), by task.", ["task"]
)


class StateCollector:
    """The gauges of state the apps register (deplite.extensions), read from the database at scrape time."""

    def describe(self):
        return []  # nothing to declare up front; registering must not query the database

    def collect(self):
        try:
            values = extensions.metrics_state()
        except DatabaseError as exc:
            # The process's own counters are still worth a scrape; /readyz reports the outage.
            logger.warning("Metrics: database state unavailable (%s)", type(exc).__name__)
            return
        for name, value in values.items():
            yield GaugeMetricFamily(f"deplite_{name}", extensions.metrics_state_help(name), value=value)


_STATE = StateCollector()
if not MULTIPROCESS:
    REGISTRY.register(_STATE)


def registry() -> CollectorRegistry:
    if not MULTIPROCESS:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(_STATE)
    return registry


def serve_on_port(port: int, *, addr: str = "127.0.0.1") -> None:
    """Serve the metrics over plain HTTP on a port of their own (a Celery worker's), in a thread.

    With PROMETHEUS_MULTIPROC_DIR set (required for a prefork pool: the tasks run in child
    processes), it reports every process writing there; without it, this process only.
    """
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=registry())
    logger.info("Worker metrics on http://%s:%s/metrics", addr, port)
