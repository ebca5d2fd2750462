"""The product's settings, with one Redis database per pytest-xdist worker.

`make test` runs the suite in parallel (pytest-xdist): pytest-django gives each worker its own test
database (`…_gw0`, `…_gw1`), and this module gives each its own Redis database, REDIS_URL's plus the
worker's number (`redis://…/0` → DB 0, 1, 2 … for gw0, gw1, gw2 …), so one worker's cache clear, broker
queue or rate-limit counters never reach another's. It rewrites the environment variable before the
product's settings read it, so the cache, the Celery broker and every process a test starts (servers,
workers, agents inherit or are handed REDIS_URL) agree on it.

Two test sessions on one machine may still share a Redis database (the same REDIS_URL, or nearby ones: base
0 with three workers and base 2 meet on DB 2). So each session also gets its own key prefix, for the cache's
keys and the outbox's pace (REDIS_KEY_PREFIX) and for the broker's (CELERY_BROKER_KEY_PREFIX), and tests
delete their session's keys only (tests/conftest.py), never FLUSHDB: one session's cleanup cannot empty
another's rate-limit counters or broker queue.

pytest-django loads the settings before any conftest.py, so this cannot live in one.
"""

import os
import uuid
from urllib.parse import urlsplit, urlunsplit


def _worker_redis_url(url: str, worker: str) -> str:
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    index = int(worker.removeprefix("gw"))
    return urlunsplit(parts._replace(path=f"/{base + index}"))


if os.environ.get("REDIS_URL") and os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["REDIS_URL"] = _worker_redis_url(os.environ["REDIS_URL"], os.environ["PYTEST_XDIST_WORKER"])

# One per session: the xdist workers inherit the controller's (it loads these settings first), and so do the
# processes the tests start. Set here, over any REDIS_KEY_PREFIX of the shell: it must be this session's own.
os.environ.setdefault("DEPLITE_TEST_SESSION", uuid.uuid4().hex[:12])
os.environ["REDIS_KEY_PREFIX"] = f"deplite-test-{os.environ['DEPLITE_TEST_SESSION']}"
os.environ["CELERY_BROKER_KEY_PREFIX"] = f"{os.environ['REDIS_KEY_PREFIX']}:"

from deplite.settings import *  # noqa: E402, F403

# The processes tests start inherit the environment (pytest-django put this module's name in it): they read
# the product's own settings, with this worker's REDIS_URL. (pytest finds this module through `--ds`, which
# wins over the variable, in the workers too.)
os.environ["DJANGO_SETTINGS_MODULE"] = "deplite.settings"
