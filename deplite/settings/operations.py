"""Operations: logs and metrics."""

from __future__ import annotations

from deplite.logs import logging_config as logs_config

from .base import env

# LOG_FORMAT=json: one JSON object per line (time, level, logger, message, request id, org,
# user/token prefix, job id, agent id, task id). Plain text otherwise (make run).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = logs_config(fmt=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
# One line per periodic task run is noise; failures still log at ERROR.
LOGGING["loggers"]["celery.app.trace"] = {"level": env.str("CELERY_TRACE_LOG_LEVEL", default="WARNING")}
# GET /metrics answers only `Authorization: Bearer <this>`; unset, the endpoint is off (404).
DEPLITE_METRICS_TOKEN = env.str("DEPLITE_METRICS_TOKEN", default="")
# A Celery worker serves its own metrics on this port (plain HTTP, no token: bind it to a private address).
DEPLITE_WORKER_METRICS_PORT = env.int("DEPLITE_WORKER_METRICS_PORT", default=0)
DEPLITE_WORKER_METRICS_ADDR = env.str("DEPLITE_WORKER_METRICS_ADDR", default="127.0.0.1")
