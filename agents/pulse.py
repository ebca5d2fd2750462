"""The web tier's liveness mark, so the lost-agent reaper never blames agents for the server's own outage.

Every web process (deplite/asgi.py, deplite/wsgi.py: `deplite.serving.web_process_started`) runs a
thread that every DEPLITE_SERVER_PULSE_SECONDS updates one row: `last_pulse_at` = now, and
`up_since` = when the web tier's current unbroken run of pulses began (a pulse that finds the last
one older than the gap, three intervals, starts a new run). Several processes share the row, so a
rolling restart is no break; a web tier that was stopped, or could not reach the database, is one.

The rule (agents.tasks.agents_reap_lost): an agent's silence counts only while the server was
demonstrably reachable — from `max(agent.last_seen_at, up_since)` to the latest pulse — so during a
web outage the count stops, and after it starts again from when the web tier was back. The mark is
the server's own, not other agents' traffic: with a single agent, "nobody else talked" would say
nothing about the server.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Case, DateTimeField, F, Value, When
from django.utils import timezone

from .models import ServerPulse

logger = logging.getLogger(__name__)

WEB = "web"
# No pulse row at all: no web process of this version has run yet; silence alone decides (as before).
SINCE_EVER = datetime.min.replace(tzinfo=UTC)


def pulse_gap() -> timedelta:
    """Longer than this without a pulse, the web tier counts as having been down."""
    return timedelta(seconds=3 * settings.DEPLITE_SERVER_PULSE_SECONDS)


def pulse_record(*, now: datetime, run_started: datetime) -> None:
    """One pulse of a web process whose own pulses have been unbroken since `run_started`."""
    updated = ServerPulse.objects.filter(pk=WEB).update(
        up_since=Case(
            When(last_pulse_at__lt=now - pulse_gap(), then=Value(run_started)),
            default=F("up_since"),
            output_field=DateTimeField(),
        ),
        last_pulse_at=now,
    )
    if not updated:
        try:
            with transaction.atomic():
                ServerPulse.objects.create(name=WEB, up_since=run_started, last_pulse_at=now)
        except IntegrityError:
            pass  # another process created it first; its run is as good as this one's


def reachable_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The span over which an agent's silence counts against it: from when the web tier was last back
    up to its latest pulse. Not up to now: a web tier that stopped a moment ago has not missed a pulse
    yet, and the time since its last one is not known to have been reachable."""
    now = now or timezone.now()
    row = ServerPulse.objects.filter(pk=WEB).values_list("up_since", "last_pulse_at").first()
    if row is None:
        return SINCE_EVER, now
    up_since, last_pulse_at = row
    return up_since, min(last_pulse_at, now)


class _PulseThread(threading.Thread):
    def __init__(self):
        super().__init__(name="deplite-server-pulse", daemon=True)
        self.stop = threading.Event()

    def run(self) -> None:
        run_started: datetime | None = None
        last_ok: datetime | None = None
        while True:
            now = timezone.now()
            if last_ok is None or now - last_ok > pulse_gap():
                run_started = now  # this process's pulses broke off (or never began): a new run
            try:
                pulse_record(now=now, run_started=run_started)
                last_ok = now
            except DatabaseError as exc:
                logger.warning("Server pulse not recorded (%s); agents' silence will count from the next one.", exc)
            except Exception:
                # Anything else must not end the thread: without pulses the lost-agent reaper judges nobody.
                logger.exception("Server pulse failed; trying again in %ss.", settings.DEPLITE_SERVER_PULSE_SECONDS)
            finally:
                # Hand the connection back (to the pool) between pulses.
                connection.close()
            if self.stop.wait(settings.DEPLITE_SERVER_PULSE_SECONDS):
                return


_thread: _PulseThread | None = None
_thread_pid: int | None = None
_lock = threading.Lock()


def start(**kwargs) -> None:
    """Start this process's pulse (once per process; a forked worker starts its own)."""
    global _thread, _thread_pid
    with _lock:
        if _thread is not None and _thread_pid == os.getpid() and _thread.is_alive():
            return
        _thread, _thread_pid = _PulseThread(), os.getpid()
        _thread.start()
