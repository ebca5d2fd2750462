"""Background work, one way: enqueue a Celery task or send a signal after commit.

A request answered 2xx has its rows committed before any task is enqueued, and a broker
that is down or slow never turns that committed write into an error nor holds the
request: the enqueue is bounded (the broker transport's connect/socket timeouts and no
publish retry), failures are logged, and the periodic sweepers pick up rows whose task
was never sent. Use these helpers instead of calling `.delay()` / `transaction.on_commit`
by hand.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Task
from django.db import transaction
from django.dispatch import Signal
from kombu.exceptions import KombuError

logger = logging.getLogger(__name__)

BROKER_ERRORS = (KombuError, redis.RedisError, OSError)


def enqueue_now(task: Task, *args: Any, **kwargs: Any) -> bool:
    """Send `task` now without retrying the publish; True when the broker took it."""
    try:
        task.apply_async(args=args, kwargs=kwargs, retry=False)
    except BROKER_ERRORS as exc:
        logger.warning("Could not enqueue %s%r: %s; a sweeper will pick it up.", task.name, args, exc)
        return False
    return True


def enqueue_after_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    """Enqueue `task(*args, **kwargs)` once the current transaction commits (at once outside one).

    Arguments must be JSON-serialisable ids (tasks take ids and re-read their rows).
    """

    def _enqueue() -> None:  # a named function: Django's robust on_commit logs failures by __qualname__
        enqueue_now(task, *args, **kwargs)

    transaction.on_commit(_enqueue, robust=True)


def send_after_commit(signal: Signal, *, sender: Any, **kwargs: Any) -> None:
    """Send `signal` robustly after commit: a failing receiver is logged and never undoes the write."""

    def _send() -> None:
        for receiver, result in signal.send_robust(sender=sender, **kwargs):
            if isinstance(result, Exception):
                logger.error("%r receiver %r failed (%s)", signal, receiver, kwargs, exc_info=result)

    transaction.on_commit(_send)
