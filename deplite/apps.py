"""The project's own app: operations wiring that belongs to no domain app.

Celery's task signals give every task's log lines its task id and job id, count task failures,
and start a worker's own metrics port. (Each domain app connects its own metrics in its ready().)
"""

from __future__ import annotations

import functools
import inspect

from django.apps import AppConfig


class DepliteConfig(AppConfig):
    name = "deplite"
    verbose_name = "Deplite operations"

    def ready(self) -> None:
        from celery import signals as celery_signals

        celery_signals.task_prerun.connect(_task_context, dispatch_uid="deplite.logs.task_prerun", weak=False)
        celery_signals.task_postrun.connect(_task_context_end, dispatch_uid="deplite.logs.task_postrun", weak=False)
        celery_signals.task_failure.connect(
            _count_task_failure, dispatch_uid="deplite.metrics.task_failure", weak=False
        )
        # worker_ready, not worker_init: Django (and so this method) is set up during worker_init.
        celery_signals.worker_ready.connect(_serve_worker_metrics, dispatch_uid="deplite.metrics.worker", weak=False)


@functools.cache
def _job_id_position(task_name: str, run) -> int | None:
    """Where a task takes a job id (`job_id` as its first argument), if it does."""
    try:
        params = [p for p in inspect.signature(run).parameters.values() if p.name not in ("self",)]
    except (TypeError, ValueError):
        return None
    return 0 if params and params[0].name == "job_id" else None


# task id → the token that restores the enclosing log context when the task ends.
_task_tokens: dict[str, object] = {}


def _task_context(sender=None, task_id=None, task=None, args=None, kwargs=None, **extra) -> None:
    from deplite import logs

    job_id = (kwargs or {}).get("job_id")
    if job_id is None and task is not None and args and _job_id_position(task.name, task.run) == 0:
        job_id = args[0]
    _task_tokens[task_id] = logs.push_context(task_id=task_id, task=getattr(task, "name", None), job_id=job_id)


def _task_context_end(sender=None, task_id=None, **kwargs) -> None:
    from deplite import logs

    token = _task_tokens.pop(task_id, None)
    if token is not None:
        logs.pop_context(token)


def _count_task_failure(sender=None, **kwargs) -> None:
    from deplite import metrics

    metrics.CELERY_TASK_FAILURES.labels(task=getattr(sender, "name", "unknown")).inc()


def _serve_worker_metrics(sender=None, **kwargs) -> None:
    """A Celery worker serves its own /metrics on DEPLITE_WORKER_METRICS_PORT (a port of its own
    instead of a token): the counters its tasks record (task failures, upload verifications,
    jobs the reaper finishes, notification deliveries) are not in any web process."""
    from django.conf import settings

    from deplite import metrics

    if settings.DEPLITE_WORKER_METRICS_PORT:
        metrics.serve_on_port(settings.DEPLITE_WORKER_METRICS_PORT, addr=settings.DEPLITE_WORKER_METRICS_ADDR)
