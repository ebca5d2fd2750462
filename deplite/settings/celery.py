"""Redis, when REDIS_URL is set: the cache and Celery's broker; without it, a local-memory cache and
tasks run in-process. Celery's own settings, and every periodic task."""

from __future__ import annotations

from .base import env

REDIS_URL = env.str("REDIS_URL", default="")
# What the product's own Redis keys start with (the cache's, the outbox's pace), and an optional prefix
# for the broker's (kombu's global_keyprefix; none by default: it renames the queues). The tests give
# each session its own pair, so that sessions sharing a Redis database never touch each other's keys.
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", default="deplite")
CELERY_BROKER_KEY_PREFIX = env.str("CELERY_BROKER_KEY_PREFIX", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's, with one client object per connection pool (deplite/cache.py).
            "BACKEND": "deplite.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_KEY_PREFIX,
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
# A task is acknowledged only after it ran, and re-queued if its worker dies mid-way:
# every task is written to be safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A request never waits on a dead broker for more than this (seconds) after its commit:
# one connect attempt, no publish retry (deplite.background; the sweepers re-send).
DEPLITE_BROKER_CONNECT_TIMEOUT_SECONDS = env.float("DEPLITE_BROKER_CONNECT_TIMEOUT_SECONDS", default=0.1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A task whose worker died (SIGKILL, OOM) unacknowledged goes back to the queue after this many seconds.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "socket_timeout": 5,
    "socket_connect_timeout": DEPLITE_BROKER_CONNECT_TIMEOUT_SECONDS,
    "max_retries": 0,  # the producer's connection: fail at once, do not retry connecting
}
if CELERY_BROKER_KEY_PREFIX:
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = CELERY_BROKER_KEY_PREFIX
CELERY_BROKER_CONNECTION_TIMEOUT = DEPLITE_BROKER_CONNECT_TIMEOUT_SECONDS
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
# Workers log through LOGGING (operations.py; LOG_FORMAT=json included), with the task id and job id.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Every periodic task (celery beat, or `manage.py embedded_beat` without a broker); seconds.
CELERY_BEAT_SCHEDULE: dict = {
    # Re-enqueues upload verifications whose task was lost; expires abandoned uploads.
    "storage-sweep-files": {"task": "storage.tasks.sweep_files", "schedule": 60.0},
    # Job outputs past their binding's outputRetentionDays: marked expired, their objects removed.
    "storage-expire-outputs": {"task": "storage.tasks.expire_outputs", "schedule": 3600.0},
    # Fails running jobs past their timeout and queued jobs nobody claimed in time.
    "jobs-reap": {"task": "triggers.tasks.jobs_reap", "schedule": 30.0},
    # Re-publishes wake-ups for queued jobs whose dispatch was lost.
    "jobs-sweep-queued": {"task": "triggers.tasks.jobs_sweep_queued", "schedule": 15.0},
    # Fires the schedules whose time has come (triggers.schedules): a fire is at most this late.
    "schedules-tick": {"task": "triggers.tasks.schedules_tick", "schedule": 15.0},
    "schedule-fires-purge": {"task": "triggers.tasks.schedule_fires_purge", "schedule": 86400.0},
    # Environments: expired locks, approvals past their time, waiting jobs whose release was lost.
    "environments-sweep": {"task": "triggers.tasks.environments_sweep", "schedule": 10.0},
    "idempotency-keys-purge": {"task": "triggers.tasks.idempotency_keys_purge", "schedule": 3600.0},
    # Expired API refresh tokens and their blacklist rows (they grow with every login and rotation).
    "refresh-tokens-purge": {"task": "orgs.tasks.expired_refresh_tokens_purge", "schedule": 86400.0},
    # Fails the running jobs of agents gone silent.
    "agents-reap-lost": {"task": "agents.tasks.agents_reap_lost", "schedule": 30.0},
    "agent-nonces-purge": {"task": "agents.tasks.agent_nonces_purge", "schedule": 300.0},
    # The outbox's sweeper: messages whose task was lost (broker down, worker killed).
    "outbox-sweep": {"task": "integrations.tasks.outbox_sweep", "schedule": 2.0},
    # `/deplite login` links past their 10 minutes, used or not (only a chat user asking again cleared theirs).
    "chat-link-tokens-purge": {"task": "integrations.tasks.chat_link_tokens_purge", "schedule": 600.0},
    # The DORA rollup's last 48 hours against the jobs: recomputes what a failed receiver or a bulk
    # write left stale (insights.reconcile); one read when nothing is.
    "insights-rollup-reconcile": {"task": "insights.tasks.insights_rollup_reconcile", "schedule": 300.0},
}
