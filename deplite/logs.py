"""Log context and formats: every log line can say which request, org, caller, job and agent it is about.

One context per request (RequestContextMiddleware) or Celery task (deplite.apps): a dict held in a
ContextVar. Code that learns who or what a request is about adds it with `bind(job_id=…)`; a
logging filter (`ContextFilter`) copies the context onto every record, and `JsonFormatter`
(`LOG_FORMAT=json`) writes one JSON object per line. The plain format stays the default.

The context is a mutable dict set once at the start of the request: a sync view runs in a worker
thread under ASGI with a copy of the context, and mutating the shared dict (rather than setting the
var again) is what makes a binding made there visible to the middleware's closing log line.
Never bind a secret: only ids, slugs and token prefixes.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

# The fields a context may carry, in the order the JSON line shows them.
CONTEXT_FIELDS = ("request_id", "org", "user", "token", "job_id", "agent_id", "task_id", "task")

_context: ContextVar[dict[str, str] | None] = ContextVar("deplite_log_context", default=None)

# An incoming X-Request-ID is kept if it looks like an id (a load balancer's or a client's);
# anything else (too long, spaces, control characters) is replaced so it cannot forge log lines.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_context(**fields: Any) -> dict[str, str]:
    """Start a fresh context (a request or a task) and return it."""
    ctx = {k: str(v) for k, v in fields.items() if v is not None and v != ""}
    _context.set(ctx)
    return ctx


def clear_context() -> None:
    _context.set(None)


def push_context(**fields: Any) -> Token:
    """A context for a nested unit of work (a Celery task, possibly run eagerly inside a request):
    it starts from the enclosing context, and `pop_context` gives that one back unchanged."""
    return _context.set({**(_context.get() or {}), **{k: str(v) for k, v in fields.items() if v not in (None, "")}})


def pop_context(token: Token) -> None:
    try:
        _context.reset(token)
    except ValueError:  # made in another context (a worker that moved threads): just end it
        _context.set(None)


def bind(**fields: Any) -> None:
    """Add what is now known (org, job id, …) to the current context. Outside one, does nothing."""
    ctx = _context.get()
    if ctx is None:
        return
    for key, value in fields.items():
        if value is not None and value != "":
            ctx[key] = str(value)


def current() -> dict[str, str]:
    return dict(_context.get() or {})


def request_id_from(header: str | None) -> str:
    if header and _REQUEST_ID_RE.match(header):
        return header
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Copies the current context onto each record (without overriding an explicit `extra`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


# Paths whose access-log lines would drown everything else: load balancers and Prometheus
# call them every few seconds.
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")
_QUIET_RE = re.compile(r"(GET|HEAD) (" + "|".join(re.escape(p) for p in QUIET_PATHS) + r")(\?\S*)? ")


class QuietProbesFilter(logging.Filter):
    """Drops INFO access-log lines (uvicorn, runserver, gunicorn) of health and metrics probes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        return not _QUIET_RE.search(message + " ")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields, and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def logging_config(*, fmt: str, level: str) -> dict:
    """The LOGGING setting: `fmt` is "json" or "plain"."""
    formatter = "json" if fmt == "json" else "plain"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "deplite.logs.ContextFilter"},
            "quiet_probes": {"()": "deplite.logs.QuietProbesFilter"},
        },
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "json": {"()": "deplite.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "filters": ["context", "quiet_probes"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # deplite.request writes one line per request with its ids; uvicorn's own access line
            # would repeat it without them.
            "uvicorn.access": {"handlers": ["console"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"handlers": ["console"], "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "propagate": False},
            "gunicorn.error": {"handlers": ["console"], "propagate": False},
            "django.server": {"handlers": ["console"], "propagate": False},
        },
    }
