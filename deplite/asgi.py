"""The web process's application: one server, one port, two ways through Django.

- The agents' long-poll claim (`/api/agent/jobs/claim`) is an async view: Django's ASGI
  handler serves it, so hundreds of idle agents wait on one event loop without a thread each.
- Everything else (API, pages, admin, the run endpoint) is plain sync code. Django's ASGI
  handler would hop each such request between the event loop and a fresh thread several times
  (middleware, signals, the view): measured on 2 cores, a minimal run-like view did ~130 req/s
  that way and ~400 req/s through Django's WSGI handler. So those requests go to the WSGI
  handler, run whole in one of `WEB_THREADS` threads, one hop per request
  (`deplite.wsgi_bridge`).

The body limit (`deplite.asgi_body_limit`) stands in front of both.

Once loaded, everything the process holds (modules, settings, URLconf, models) is moved out of
the garbage collector's reach (`gc.freeze()`): a full collection walked it all, pausing every
request of the process for ~80 ms once every couple of thousand requests.
"""

import gc
import os

from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deplite.settings")
django_asgi = get_asgi_application()
django_wsgi = get_wsgi_application()

from django.conf import settings  # noqa: E402

from deplite.asgi_body_limit import BodyLimit  # noqa: E402 (needs the settings configured above)
from deplite.serving import web_process_started  # noqa: E402
from deplite.wsgi_bridge import ThreadedWSGI  # noqa: E402

# Paths served by async views; they must not hold a thread while they wait.
ASYNC_PATHS = frozenset({"/api/agent/jobs/claim"})

threaded_wsgi = ThreadedWSGI(django_wsgi, threads=settings.WEB_THREADS, send_timeout=settings.WEB_SEND_TIMEOUT_SECONDS)


async def route(scope, receive, send):
    if scope["type"] == "http" and scope["path"] not in ASYNC_PATHS:
        return await threaded_wsgi(scope, receive, send)
    return await django_asgi(scope, receive, send)


# Bodies over DEPLITE_MAX_API_BODY_BYTES are refused before Django reads them (chunked ones too).
application = BodyLimit(route)

web_process_started.send(sender=None)

gc.collect()
gc.freeze()
