"""The claim (`POST /api/agent/jobs/claim?wait=`): the oldest queued job of the agent's org whose
trigger labels it carries, now or within `wait` seconds (a long poll).

It is an async view so that, served by ASGI in production, hundreds of idle agents wait as
coroutines on one web process, holding neither a thread, a database connection nor a Redis
connection: the process's one subscription (agents.waiters) wakes exactly one fitting waiter
per new job, and the others keep waiting without a query. Under WSGI (the embedded default)
Django runs it in the request thread, which is fine for a handful of agents.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from deplite import logs, metrics, shutdown
from deplite.api.errors import DepliteError, ValidationFailed, error_response
from triggers import services as job_services
from triggers.payloads import job_claim_payload

from .. import signing, versions, waiters
from ..models import Agent
from .serializers import AGENT_TOO_OLD_RESPONSE, ClaimOutput
from .views import AgentAPIView

logger = logging.getLogger(__name__)

# Without Redis (embedded default, or Redis down) there are no wake-ups: the wait polls at this pace.
POLL_SECONDS = 1.0


def _claim_once(agent: Agent) -> dict | None:
    try:
        job = job_services.job_claim_next(
            org_id=agent.org_id, agent_id=agent.pk, agent_name=agent.name, agent_labels=list(agent.labels)
        )
        return job_claim_payload(job) if job is not None else None
    finally:
        # A waiting claim must not hold a database connection between attempts: Django
        # keeps one per request until the request ends, so hundreds of idle long polls
        # would each pin one (and exhaust the pool). Give it back after every attempt.
        _release_connection()


def _authenticate_and_release(request) -> Agent:
    try:
        agent = signing.authenticate_request(request)
        versions.refuse_too_old(agent=agent, request=request)
        return agent
    finally:
        _release_connection()


def _release_connection() -> None:
    # Inside an atomic block (a test's transaction) closing would break the block.
    if not connection.in_atomic_block:
        connection.close()


def _parse_wait(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    try:
        wait = int(raw)
    except ValueError:
        raise ValidationFailed("wait: an integer number of seconds.") from None
    if not 0 <= wait <= settings.DEPLITE_AGENT_MAX_WAIT_SECONDS:
        raise ValidationFailed(f"wait: between 0 and {settings.DEPLITE_AGENT_MAX_WAIT_SECONDS} seconds.")
    return wait


async def _until_first(awaitable, stop: asyncio.Future) -> None:
    """Wait for `awaitable` or for `stop` (the process is stopping), whichever comes first.

    The awaitable runs as a task of its own, ended and reaped before this returns however it
    returns, also when the request itself is cancelled (Django cancels the view when the agent
    hangs up). Left behind, a `wait_for` would time out later with nobody to retrieve its
    TimeoutError, and asyncio would log "Task exception was never retrieved"."""
    task = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})  # returns its outcome rather than raising it
        # Read even while this coroutine is being cancelled: an outcome never read is what asyncio logs.
        error = None if task.cancelled() else task.exception()
    if error is not None:
        raise error


def _observe_wakeup(payload: dict) -> None:
    created = datetime.fromisoformat(payload["createdAt"].replace("Z", "+00:00"))
    metrics.CLAIM_WAKEUP_SECONDS.observe(max(0.0, (timezone.now() - created).total_seconds()))


# What `_wait_on_hub` answers when the process's subscription was lost during the wait.
_HUB_DOWN = object()


async def _wait_on_hub(hub, agent: Agent, claim, deadline: float, stop_event: asyncio.Event, stop: asyncio.Future):
    """Claim now, else wait registered with the process's subscription for a wake-up until `deadline`.

    The payload (None: nothing within the wait, or the process is stopping), or `_HUB_DOWN` once
    the subscription is lost (after one more look): the caller polls until it is back."""
    loop = asyncio.get_running_loop()
    # Registered before the first attempt: a job committed in between still wakes us.
    waiter = hub.register(org_id=agent.org_id, labels=agent.labels, loop=loop)
    try:
        waited = False
        while True:
            seen = waiter.pending
            payload = await claim(agent)
            hub.attempted(waiter, seen)
            left = deadline - loop.time()
            if payload is not None and waited:
                _observe_wakeup(payload)
            if payload is not None or left <= 0 or stop_event.is_set():
                return payload
            if waiter.hub_down:
                return _HUB_DOWN
            hub.rewait(waiter)
            try:
                # No periodic re-check: only a wake-up (or losing Redis, or SIGTERM) makes this claim query again.
                await _until_first(asyncio.wait_for(waiter.event.wait(), timeout=left), stop)
            except TimeoutError:
                return None
            waited = True
    finally:
        # A wake-up handed to us and not used (the agent hung up) goes to the next waiter.
        hub.unregister(waiter)


async def _wait_and_claim(agent: Agent, wait: float) -> dict | None:
    """Claim now, else wait up to `wait` seconds for a wake-up addressed to this claim.

    Without the process's Redis subscription (down, or not yet up) the claim polls the database
    once a second, and at the first poll after the subscription is back it waits on it again: for
    the rest of its wait a wake-up reaches it at once, not at a poll. A process told to stop
    (SIGTERM) answers at once (204) so the agent reconnects to a process that stays."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    claim = sync_to_async(_claim_once)
    stop_event = shutdown.stopping_event()
    if stop_event.is_set():
        return None
    stop = asyncio.ensure_future(stop_event.wait())
    try:
        hub = waiters.hub()
        if hub is not None and not hub.connected:
            # The process's subscription is (re)connecting: a job at hand does not wait for it.
            payload = await claim(agent)
            if payload is not None:
                return payload
            if not await hub.wait_connected(min(waiters.CONNECT_WAIT_SECONDS, max(deadline - loop.time(), 0))):
                logger.info("Agent wake-ups unavailable; agent %s polls until they are back.", agent.pk)
        elif hub is None:
            logger.info("Agent wake-ups unavailable; agent %s polls.", agent.pk)
        while True:
            if hub is not None and hub.connected:
                payload = await _wait_on_hub(hub, agent, claim, deadline, stop_event, stop)
                if payload is not _HUB_DOWN:
                    return payload
                # Redis went away; the wait just looked: poll from the next round.
            else:
                payload = await claim(agent)
                if payload is not None or deadline - loop.time() <= 0 or stop_event.is_set():
                    return payload
            # Then, the subscription back meanwhile, wait on it again. (Not woken the moment it is back:
            # `wait_connected` checks every 20 ms, too often for every polling claim through an outage.)
            await _until_first(asyncio.sleep(min(deadline - loop.time(), POLL_SECONDS)), stop)
    finally:
        stop.cancel()


class ClaimSchema(AgentAPIView):
    """The claim as the OpenAPI schema states it. `claim_view` is a plain async Django view (so a
    waiting claim is a coroutine on the event loop, not a thread), and drf-spectacular reads only
    DRF views: `agents.schema.document_claim` lists this class at the claim's path instead. Never
    routed; the tests compare what it states with what `claim_view` answers."""

    @extend_schema(
        operation_id="api_agent_jobs_claim_create",
        request=None,
        parameters=[
            OpenApiParameter(
                "wait",
                {"type": "integer", "minimum": 0, "maximum": settings.DEPLITE_AGENT_MAX_WAIT_SECONDS},
                OpenApiParameter.QUERY,
                required=False,
                description="Seconds to wait for a job before answering 204 (a long poll); 0 or absent: answer now.",
            )
        ],
        responses={
            200: ClaimOutput,
            204: OpenApiResponse(description="No job for this agent's labels within `wait` seconds."),
            426: AGENT_TOO_OLD_RESPONSE,
        },
        description="Claim the oldest queued job of this agent's org whose trigger labels it carries.",
    )
    def post(self, request):  # pragma: no cover - never routed
        raise NotImplementedError("documentation only: the claim is served by claim_view")


@csrf_exempt
async def claim_view(request):
    """`POST /api/agent/jobs/claim?wait=<0..30>` → 200 job or 204 after up to `wait` seconds."""
    if request.method != "POST":
        response = error_response(405, "method_not_allowed", "Method not allowed.")
        response["Allow"] = "POST"  # RFC 9110: a 405 names the methods the resource takes
        return response
    try:
        agent = await sync_to_async(_authenticate_and_release)(request)
        wait = _parse_wait(request.GET.get("wait"))
        if wait > 0:
            payload = await _wait_and_claim(agent, wait)
        else:
            payload = await sync_to_async(_claim_once)(agent)
    except DepliteError as exc:
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        if exc.status == 503:
            response["Retry-After"] = "5"
        return response
    if payload is None:
        return HttpResponse(status=204)
    logs.bind(job_id=payload["id"])
    return JsonResponse(payload)
