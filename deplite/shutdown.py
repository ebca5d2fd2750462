"""Knowing that this web process is stopping, so long polls can end at once.

uvicorn (alone or as gunicorn's worker) handles SIGTERM by closing its sockets and then waiting
for the requests in flight. A claim waiting up to 30 s would hold that stop, and the agent
behind it would wait on a process that is going away. `stopping_event()` gives a waiting
coroutine an event that is set when SIGTERM or SIGINT arrives: the claim then answers 204 at
once and the agent reconnects, to another process behind the load balancer.

The handler is installed lazily, from the event loop's (main) thread on the first wait: by then
uvicorn has installed its own handler, which ours calls after setting the events, so uvicorn's
shutdown runs as before. Under runserver (threads) there is no main-thread loop: nothing is
installed and waits end on their own timeout, as before.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import weakref

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)

_stopping = threading.Event()
_lock = threading.Lock()
# One asyncio.Event per running loop, set from the signal handler through the loop.
_events: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = weakref.WeakKeyDictionary()
_previous: dict[int, object] = {}


def is_stopping() -> bool:
    return _stopping.is_set()


def _handler(signum, frame) -> None:
    if not _stopping.is_set():
        logger.info("Signal %s: ending long polls so agents reconnect elsewhere.", signal.Signals(signum).name)
    _stopping.set()
    for loop, event in list(_events.items()):
        if not loop.is_closed():
            loop.call_soon_threadsafe(event.set)
    previous = _previous.get(signum)
    if callable(previous):
        previous(signum, frame)


def _install() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    with _lock:
        for sig in SIGNALS:
            current = signal.getsignal(sig)
            if current is _handler:
                continue
            # The default action (end the process) is kept by re-raising with it restored.
            _previous[sig] = _default_action if current == signal.SIG_DFL else current
            signal.signal(sig, _handler)


def _default_action(signum, frame) -> None:
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def stopping_event() -> asyncio.Event:
    """An event of the running loop that is set once the process is told to stop."""
    loop = asyncio.get_running_loop()
    _install()
    event = _events.get(loop)
    if event is None:
        event = _events[loop] = asyncio.Event()
        if _stopping.is_set():
            event.set()
    return event
