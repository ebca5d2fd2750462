"""Celery processes as an operator runs them: a worker's task lines carry the task id and job id (JSON),
its task failures are counted on its own metrics port, and it stops cleanly on SIGTERM; beat too."""

from __future__ import annotations

import json
import signal
import sys
import time
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from deplite.celery import app as celery_app
from tests.agent_program.harness import wait_until
from tests.e2e.stack import WorkerProcess, _Process, stack_env
from tests.s3_server import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis, pytest.mark.real_worker]


def test_a_worker_logs_task_and_job_ids_counts_failures_on_its_metrics_port_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {
        **stack_env(public_url="http://127.0.0.1:8000"),
        "LOG_FORMAT": "json",
        "DEPLITE_WORKER_METRICS_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    worker = WorkerProcess(env=env, log_path=tmp_path / "worker.log").start()
    try:
        # A job id that is not a UUID makes the dispatch task fail.
        job_id = f"not-a-uuid-{uuid.uuid4().hex[:6]}"
        sent = celery_app.send_task("triggers.tasks.job_dispatch", args=[job_id])

        def failure_line():
            for line in worker.output().splitlines():
                if line.startswith("{") and sent.id in line and '"ERROR"' in line:
                    return json.loads(line)
            return None

        wait_until(lambda: failure_line() is not None, timeout=30, message="the task failure to be logged")
        line = failure_line()
        assert line["task_id"] == sent.id and line["job_id"] == job_id
        assert line["task"] == "triggers.tasks.job_dispatch"

        scraped = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        failures = {
            s.labels.get("task"): s.value
            for f in text_string_to_metric_families(scraped)
            for s in f.samples
            if s.name == "deplite_celery_task_failures_total"
        }
        assert failures.get("triggers.tasks.job_dispatch") == 1
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.proc.wait(timeout=20) == 0
    finally:
        worker.kill()
    assert "Traceback" not in worker.output().split("worker: Warm shutdown")[-1]


def test_beat_stops_cleanly_on_sigterm(tmp_path):
    beat = _Process(
        command=[
            sys.executable,
            "-m",
            "celery",
            "-A",
            "deplite",
            "beat",
            "--loglevel=INFO",
            f"--schedule={tmp_path / 'celerybeat-schedule'}",
        ],
        env=stack_env(public_url="http://127.0.0.1:8000"),
        log_path=tmp_path / "beat.log",
    )
    beat._spawn()
    try:
        # Running: its schedule is open and the first due tasks are sent (a stop during start-up is another matter).
        wait_until(lambda: "Sending due task" in beat.output() or not beat.running(), timeout=30, message="beat to run")
        assert beat.running(), beat.output()
        # Let the start-up burst of due tasks go out (its log goes quiet): a stop in the middle of a publish
        # is the start-up case, and on a loaded machine the burst can take longer than any fixed pause.
        seen = {"output": beat.output(), "at": time.monotonic()}

        def quiet_for_a_while() -> bool:
            output = beat.output()
            if output != seen["output"]:
                seen.update(output=output, at=time.monotonic())
            return time.monotonic() - seen["at"] >= 1.5

        wait_until(quiet_for_a_while, timeout=30, message="beat's start-up burst to go out")
        beat.proc.send_signal(signal.SIGTERM)
        assert beat.proc.wait(timeout=20) == 0, beat.output()
    finally:
        beat.kill()
    assert "Traceback" not in beat.output()


def test_tasks_are_acknowledged_after_they_ran_and_requeued_if_their_worker_dies():
    # A worker stopped or killed mid-task must not lose it (every task is safe to run twice).
    assert celery_app.conf.task_acks_late is True
    assert celery_app.conf.task_reject_on_worker_lost is True
    assert celery_app.conf.worker_prefetch_multiplier == 1
