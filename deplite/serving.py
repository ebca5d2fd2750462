"""The web process announces itself, so apps can run what only a serving process needs.

`web_process_started` is sent once the WSGI/ASGI application is loaded (deplite/asgi.py, deplite/wsgi.py),
in each process that serves requests — not in workers, beat or management commands. The agents app starts
the web tier's liveness pulse on it (agents.pulse).
"""

from django.dispatch import Signal

web_process_started = Signal()
