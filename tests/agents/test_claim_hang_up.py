"""An agent that hangs up during its long poll: Django cancels the waiting claim (its ASGI handler cancels
the view when the client disconnects). The claim leaves the process's hub at once and leaves no task
behind: a `wait_for` left running would time out later with nobody to read its TimeoutError, which asyncio
reports as "Task exception was never retrieved" (seen in the web log under load)."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time

import pytest
import uvicorn
from django.core.asgi import get_asgi_application

from agents import waiters
from agents.protocol import claim as protocol_claim

from ..agent_program.harness import wait_until
from ..factories import AgentFactory
from ..s3_server import free_port
from .signed import SignedAgent

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAIT = 2  # the claims' wait, seconds: a task left behind times out after it


@pytest.fixture
def looks(monkeypatch):
    """How many claim queries have finished."""
    done: list = []
    real = protocol_claim._claim_once

    def counting(agent):
        try:
            return real(agent)
        finally:
            done.append(agent.pk)

    monkeypatch.setattr(protocol_claim, "_claim_once", counting)
    return done


@pytest.fixture
def hub():
    hub = waiters.hub()
    wait_until(lambda: hub.connected, timeout=15, interval=0.02, message="the hub to connect")
    return hub


def _never_retrieved(reports: list[dict]) -> list[str]:
    return [r.get("message", "") for r in reports if "never retrieved" in r.get("message", "")]


def _left_waiting(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task]:
    """The tasks on `loop` still running a claim's wait (a wake-up's, a poll's, the subscription's) and not
    being cancelled (a cancelled task ends quietly)."""
    names = {"wait_for", "sleep", "Event.wait", "ClaimWaiters.wait_connected"}
    return [t for t in asyncio.all_tasks(loop) if t.get_coro().__qualname__ in names and not t.cancelling()]


def test_a_waiting_claim_cancelled_leaves_the_hub_and_no_task_behind(org_a, hub, looks):
    agent = AgentFactory(org=org_a)
    reports: list[dict] = []
    seen: dict = {}

    async def scenario():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reports.append(context))
        before = hub.waiting(org_a.pk)
        claim = asyncio.create_task(protocol_claim._wait_and_claim(agent, WAIT))
        for _ in range(500):  # until it waits for a wake-up, its first look done (bounded: 5 s)
            if hub.waiting(org_a.pk) == before + 1 and looks:
                break
            await asyncio.sleep(0.01)
        seen["waiting"] = hub.waiting(org_a.pk) - before
        await asyncio.sleep(0.1)

        claim.cancel()
        with pytest.raises(asyncio.CancelledError):
            await claim

        seen["after"] = hub.waiting(org_a.pk) - before
        seen["left"] = _left_waiting(loop)
        await asyncio.sleep(WAIT + 0.5)  # past the claim's wait: a wait left running has timed out now
        gc.collect()  # asyncio reports an unread exception when the task is collected

    # In a thread of its own, as a web request's loop: in the main thread the claim would install the
    # process's SIGTERM handler (deplite.shutdown) in the test runner.
    runner = threading.Thread(target=asyncio.run, args=(scenario(),))
    runner.start()
    runner.join(timeout=30)
    assert not runner.is_alive()
    assert seen["waiting"] == 1
    assert seen["after"] == 0
    assert seen["left"] == []
    assert _never_retrieved(reports) == []


class _Server:
    """Django's ASGI handler (the one that serves the claim in production, deplite.asgi) under uvicorn in
    this process, so the test sees the process's hub and the server loop's reports."""

    def __init__(self):
        self.port = free_port()
        self.reports: list[dict] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        config = uvicorn.Config(
            get_asgi_application(), host="127.0.0.1", port=self.port, lifespan="off", log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda _loop, context: self.reports.append(context))
        try:
            self.loop.run_until_complete(self.server.serve())
        finally:
            self.loop.close()

    def start(self) -> _Server:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=15, interval=0.02, message="uvicorn to start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def on_loop(self, fn):
        """`fn()` run on the server's loop (its tasks are the loop's own business)."""

        async def call():
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=5)


def test_an_agent_hanging_up_its_long_poll_leaves_the_hub_and_no_task_behind(org_a, hub, looks):
    agent = AgentFactory(org=org_a)
    path = f"/api/agent/jobs/claim?wait={WAIT}"
    header = SignedAgent(agent).header("POST", path, b"{}")
    server = _Server().start()
    try:
        before = hub.waiting(org_a.pk)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                (
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Content-Length: 2\r\nX-Agent-Signature: {header}\r\n\r\n{{}}"
                ).encode()
            )
            wait_until(
                lambda: hub.waiting(org_a.pk) == before + 1 and looks,
                timeout=10,
                interval=0.02,
                message="the claim to wait",
            )
        # Hung up (closed) well within its wait.
        wait_until(lambda: hub.waiting(org_a.pk) == before, timeout=WAIT, interval=0.02, message="the claim to leave")
        assert server.on_loop(lambda: _left_waiting(server.loop)) == []
        time.sleep(WAIT + 0.5)  # past the claim's wait: a wait left running has timed out now
        server.on_loop(gc.collect)
    finally:
        server.stop()
    assert len(looks) == 1  # the claim's one look: it waited, and ended when the agent hung up
    assert _never_retrieved(server.reports) == []
