"""The waiting claims of one web process, woken one at a time through ONE Redis subscription.

Every web process runs one listener thread subscribed to `triggers.wakeups.CHANNEL`. A
waiting claim registers here (org, the agent's labels, its event loop) instead of opening
its own Redis connection. A wake-up names the org and the new job's labels; the listener
hands it to exactly one registered waiter that can take such a job — the one waiting the
longest — and the others keep waiting without touching the database. With several web
processes, the first process that has a fitting waiter takes the wake-up (a `SET NX` on the
wake-up's id), so one job costs one claim query wherever the agents wait.

A wake-up is never dropped because its waiter went away: a waiter that leaves holding a
wake-up it did not use (its agent hung up, its wait ended) passes it to the next fitting
waiter here, or, with none left, publishes it again for the other processes. The database
stays the source of truth: a wake-up only says "claim now", and the sweeper re-announces
jobs that stay queued (a message lost while Redis was away).

The listener is a plain thread, not a coroutine, so it serves ASGI workers (one loop) and
the embedded default's WSGI requests (a loop per request) alike; waiters are woken through
`loop.call_soon_threadsafe`.

The listener owns its reconnection: on losing the subscription it tells its waiters at once (they
poll the database, and wait here again as soon as it is back) and makes a new one, at once if the lost
one had been up a while, else after `RECONNECT_SECONDS`. A Redis that stops answering sends no error,
only silence: the listener pings a quiet subscription and takes it for lost when no answer comes
within `ANSWER_SECONDS`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import redis
from django.conf import settings

from triggers import wakeups

logger = logging.getLogger(__name__)

# How long a process remembers that it took a wake-up (the SET NX key's lifetime).
TAKEN_TTL_SECONDS = 60
# A wake-up passed between processes more often than this is left to the sweeper.
MAX_HOPS = 3
# Between failed attempts to subscribe (a subscription that was up is re-made at once).
RECONNECT_SECONDS = 1.0
# How long Redis may take to answer the listener (confirm the subscription, reply to a ping) before the
# listener takes the subscription for lost and makes a new one.
ANSWER_SECONDS = 5.0
# A subscription that heard nothing for this long is pinged: a Redis that stopped answering (hung,
# or the network path gone silent) sends no error, only silence.
PING_SECONDS = 5.0
# A claim waits this long for the process's subscription to come up before polling instead.
CONNECT_WAIT_SECONDS = 2.0


@dataclass(eq=False)
class Waiter:
    org_id: str
    labels: frozenset[str]
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event
    # The wake-up handed to this waiter and not yet used by a claim attempt.
    pending: dict | None = None
    # Set when the listener lost Redis: the waiter should fall back to polling.
    hub_down: bool = False
    registered_at: float = field(default_factory=time.monotonic)

    def fits(self, labels: list[str]) -> bool:
        return set(labels) <= self.labels


class ClaimWaiters:
    """The process-wide registry of waiting claims and its Redis listener."""

    def __init__(self, url: str):
        self.url = url
        self._lock = threading.Lock()
        self._idle: dict[str, deque[Waiter]] = {}  # org id → waiters with no pending wake-up, oldest first
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._client: redis.Redis | None = None
        # The subscription's connection name (`CLIENT LIST`): this process and this registry.
        self.client_name = f"deplite-claim-waiters-{os.getpid()}-{id(self):x}"
        # Counters, for tests and the benchmark: how many wake-ups reached a waiter here.
        self.delivered = 0
        self.forwarded = 0

    # --- waiters (called from request coroutines) ------------------------------------------------

    def register(self, *, org_id, labels, loop: asyncio.AbstractEventLoop) -> Waiter:
        waiter = Waiter(org_id=str(org_id), labels=frozenset(labels), loop=loop, event=asyncio.Event())
        with self._lock:
            # Read under the lock that `_wake_all` takes: a waiter registering just as the subscription
            # is lost is either marked here or by `_wake_all(hub_down=True)`, never waits unaware.
            waiter.hub_down = not self._connected.is_set()
            self._idle.setdefault(waiter.org_id, deque()).append(waiter)
        return waiter

    def attempted(self, waiter: Waiter, seen: dict | None) -> None:
        """A claim attempt ended; `seen` is the wake-up that was pending when it started, now used.

        A wake-up that arrived during the attempt stays pending: the attempt may have read
        the table before that job committed, so the waiter must look again.
        """
        with self._lock:
            if waiter.pending is seen:
                waiter.pending = None

    def rewait(self, waiter: Waiter) -> None:
        """The waiter found nothing and waits again, last in line (at once if woken meanwhile)."""
        with self._lock:
            if waiter.pending is not None:
                return  # its event is set: it looks again at once
            waiter.event.clear()
            queue = self._idle.setdefault(waiter.org_id, deque())
            if waiter not in queue:
                queue.append(waiter)

    def unregister(self, waiter: Waiter) -> None:
        """The waiter leaves. An unused wake-up it holds goes to the next fitting waiter."""
        with self._lock:
            queue = self._idle.get(waiter.org_id)
            if queue is not None and waiter in queue:
                queue.remove(waiter)
                if not queue:
                    del self._idle[waiter.org_id]
            wake, waiter.pending = waiter.pending, None
        if wake is not None:
            self._hand_on(wake)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> bool:
        """Whether the subscription is up within `timeout` seconds (else the caller polls)."""
        deadline = time.monotonic() + timeout
        while not self.connected:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def waiting(self, org_id=None) -> int:
        with self._lock:
            if org_id is not None:
                return len(self._idle.get(str(org_id), ()))
            return sum(len(q) for q in self._idle.values())

    # --- delivery (listener thread) -----------------------------------------------------------------

    def deliver(self, wake: dict) -> bool:
        """Hand a wake-up to one fitting waiter of this process. False if none here could take it."""
        org_id, labels = str(wake.get("org", "")), list(wake.get("labels") or [])
        with self._lock:
            if not any(w.fits(labels) for w in self._idle.get(org_id, ())):
                return False
        # Outside the lock: a Redis round trip must not hold up waiters registering.
        if wake.get("id") and not self._take_globally(wake["id"]):
            return True  # another process's waiter has it
        while True:
            with self._lock:
                queue = self._idle.get(org_id)
                waiter = next((w for w in queue if w.fits(labels)), None) if queue else None
                if waiter is None:
                    break
                queue.remove(waiter)
                if not queue:
                    del self._idle[org_id]
                waiter.pending = wake
            if self._wake(waiter):
                self.delivered += 1
                return True
            # Its loop is gone (the request ended meanwhile): the next one.
            with self._lock:
                waiter.pending = None
        # Ours, but our fitting waiters left meanwhile: pass it on rather than lose it.
        self._hand_on(wake)
        return True

    def _take_globally(self, wake_id: str) -> bool:
        """Only one process acts on a wake-up. Without Redis at hand, act (a spare claim is harmless)."""
        try:
            return bool(self._redis().set(f"{wakeups.CHANNEL}:taken:{wake_id}", b"1", nx=True, ex=TAKEN_TTL_SECONDS))
        except (redis.RedisError, OSError):
            return True

    def _hand_on(self, wake: dict) -> None:
        # Same process first (no round trip), else the other processes, with a new id.
        wake = {**wake, "id": None}
        if self.deliver(wake):
            return
        hops = int(wake.get("hops") or 0) + 1
        if hops > MAX_HOPS:
            return  # the sweeper re-announces jobs that stay queued
        try:
            wakeups.publish(org_id=wake["org"], labels=wake.get("labels") or [], hops=hops)
            self.forwarded += 1
        except (redis.RedisError, OSError):
            logger.warning("Could not pass on a wake-up for org %s; the sweeper re-announces it.", wake.get("org"))

    @staticmethod
    def _wake(waiter: Waiter) -> bool:
        try:
            waiter.loop.call_soon_threadsafe(waiter.event.set)
        except RuntimeError:  # the loop is closed
            return False
        return True

    def _wake_all(self, *, hub_down: bool) -> None:
        """After a (re)connection or on losing Redis: every waiter looks again once."""
        with self._lock:
            waiters = [w for q in self._idle.values() for w in q]
            for w in waiters:
                w.hub_down = hub_down
        for w in waiters:
            self._wake(w)

    # --- the listener ----------------------------------------------------------------------------------

    def _redis(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        return self._client

    def _subscriber(self) -> redis.Redis:
        # Named, to be found in `CLIENT LIST` (and cut there by the tests' fault injection).
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, client_name=self.client_name)

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._listen, name="deplite-claim-waiters", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _await_subscribed(self, pubsub) -> None:
        """Until Redis confirms the subscription: before that a wake-up published is not ours to
        receive, and a claim registering meanwhile would wait for one that never comes."""
        deadline = time.monotonic() + ANSWER_SECONDS
        while not self._stopping.is_set():
            message = pubsub.get_message(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            if message is not None and message.get("type") == "subscribe":
                return
            if time.monotonic() >= deadline:
                raise redis.TimeoutError("Redis did not confirm the wake-up subscription")

    def _receive(self, pubsub) -> None:
        """Deliver wake-ups until told to stop; raises once the subscription is lost or Redis went silent."""
        heard = time.monotonic()  # when Redis last sent anything on this connection
        pinged: float | None = None  # when an unanswered ping went out
        while not self._stopping.is_set():
            message = pubsub.get_message(timeout=1.0)
            now = time.monotonic()
            if message is None:
                if pinged is not None and now - pinged >= ANSWER_SECONDS:
                    raise redis.TimeoutError("Redis did not answer the wake-up subscription's ping")
                if pinged is None and now - heard >= PING_SECONDS:
                    pubsub.ping()
                    pinged = now
                continue
            heard, pinged = now, None
            if message.get("type") != "message":
                continue  # the pong
            try:
                wake = json.loads(message["data"])
            except (TypeError, ValueError):
                continue
            if isinstance(wake, dict):
                self.deliver(wake)

    def _listen(self) -> None:
        first = True
        while not self._stopping.is_set():
            client = self._subscriber()
            pubsub = client.pubsub()
            up_since: float | None = None
            try:
                pubsub.subscribe(wakeups.CHANNEL)
                self._await_subscribed(pubsub)
                self._connected.set()
                up_since = time.monotonic()
                if not first:
                    self._wake_all(hub_down=False)  # wake-ups sent while we were away are lost
                first = False
                self._receive(pubsub)
            except (redis.RedisError, OSError) as exc:
                if self._connected.is_set():
                    logger.warning("Agent wake-ups unavailable (%s); waiting agents poll until Redis is back.", exc)
                self._connected.clear()
                self._wake_all(hub_down=True)
                # A subscription that was up a while is re-made at once (its connection was cut, Redis
                # restarted): claims starting meanwhile wait for it (CONNECT_WAIT_SECONDS) instead of
                # polling. After a failed attempt, or one that lasted no time, the next waits a little.
                if up_since is None or time.monotonic() - up_since < RECONNECT_SECONDS:
                    self._stopping.wait(RECONNECT_SECONDS)
            finally:
                try:
                    pubsub.close()
                    client.close()
                except (redis.RedisError, OSError):
                    pass  # already gone
        self._connected.clear()


_hub: ClaimWaiters | None = None
_hub_pid: int | None = None
_hub_lock = threading.Lock()


def hub() -> ClaimWaiters | None:
    """This process's registry, its listener started (None without Redis: the embedded default)."""
    global _hub, _hub_pid
    if not settings.REDIS_URL:
        return None
    with _hub_lock:
        # A forked child (gunicorn worker) does not inherit the parent's thread: start its own.
        if _hub is None or _hub_pid != os.getpid() or _hub.url != settings.REDIS_URL:
            if _hub is not None and _hub_pid == os.getpid():
                _hub.stop()
            _hub, _hub_pid = ClaimWaiters(settings.REDIS_URL), os.getpid()
        _hub.start()
        return _hub
