"""The agent protocol (`/api/agent/…`): every request is signed (agents.signing).

An agent sees only its own org's jobs and files, only jobs whose trigger labels it
carries (claim), and only the jobs it claimed (events, finish). Anything else is a 404.

The claim is a long poll. It is an async view so that, served by ASGI in production,
hundreds of idle agents wait as coroutines on one web process, holding neither a thread,
a database connection nor a Redis connection: the process's one subscription
(agents.waiters) wakes exactly one fitting waiter per new job, and the others keep
waiting without a query. Under WSGI (the embedded default) Django runs it in the request
thread, which is fine for a handful of agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from deplite import logs, metrics, shutdown
from deplite.api.camel import camelize
from deplite.api.errors import DepliteError, NotFound, Unauthenticated, ValidationFailed, error_response
from deplite.api.fields import StrictBooleanField, StrictCharField
from orgs.authentication import MachineUser
from storage import selectors as storage_selectors
from storage import services as storage_services
from triggers import services as job_services
from triggers.models import Job, StepStatus
from triggers.payloads import job_claim_payload

from . import services, signing, versions, waiters
from .models import Agent

logger = logging.getLogger(__name__)

# Without Redis (embedded default, or Redis down) there are no wake-ups: the wait polls at this pace.
POLL_SECONDS = 1.0


class AgentPrincipal(MachineUser):
    """`request.user` of a signed agent request (the Agent is `request.auth`)."""

    def __init__(self, agent: Agent):
        self.agent = agent


class AgentSignatureAuthentication(BaseAuthentication):
    def authenticate(self, request):
        agent = signing.authenticate_request(request._request)
        return AgentPrincipal(agent), agent

    def authenticate_header(self, request):
        return "AgentSignature"


class JobPrincipal(MachineUser):
    """`request.user` of a request made with a job's DEPLITE_JOB_TOKEN (the Job is `request.auth`)."""

    def __init__(self, job: Job):
        self.job = job


class JobTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer djt_…`: a running job's own credential, as a workflow step has it. It is not
    an agent: it can only ask for the download URL of that job's input files."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, raw = header.partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not raw.startswith(job_services.JOB_TOKEN_PREFIX):
            return None
        job = job_services.job_for_token(raw)
        if job is None:
            raise Unauthenticated("The job token is invalid, or its job is no longer running.", code="invalid_job_token")
        return JobPrincipal(job), job

    def authenticate_header(self, request):
        return "Bearer"


class AgentAPIView(APIView):
    authentication_classes = [AgentSignatureAuthentication]
    permission_classes = [IsAuthenticated]

    @property
    def agent(self) -> Agent:
        return self.request.auth

    def agent_job(self, job_id: str) -> Job:
        """A job this agent claimed; anything else (other org, other agent, unknown) is a 404."""
        try:
            pk = uuid.UUID(str(job_id))
        except ValueError:
            raise NotFound("Job not found.") from None
        job = Job.objects.filter(pk=pk, org_id=self.agent.org_id, agent_id=self.agent.pk).first()
        if job is None:
            raise NotFound("Job not found.")
        logs.bind(job_id=job.pk)
        return job


# --- heartbeat -------------------------------------------------------------------------------------


class JobIdField(serializers.UUIDField):
    """A job id as the claim gave it: a UUID string. DRF would also take an integer as a UUID."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class HeartbeatInput(serializers.Serializer):
    hostname = StrictCharField(max_length=255, allow_blank=True, required=False, default="")
    version = StrictCharField(max_length=50, allow_blank=True, required=False, default="")
    workflows = serializers.ListField(
        child=StrictCharField(max_length=100), max_length=500, required=False, default=list
    )
    # The jobs the agent runs or still reports on. Absent (an older agent): nothing is inferred from it.
    running_jobs = serializers.ListField(child=JobIdField(), max_length=1000, required=False)


class HeartbeatOutput(serializers.Serializer):
    agent_id = serializers.UUIDField()
    name = StrictCharField()
    labels = serializers.ListField(child=StrictCharField())
    server_time = serializers.DateTimeField()


AGENT_TOO_OLD_RESPONSE = OpenApiResponse(
    description="`agent_too_old`: the agent is older than the oldest version the server speaks "
    "(DEPLITE_AGENT_MIN_VERSION); the message is the command that upgrades it."
)


class HeartbeatView(AgentAPIView):
    @extend_schema(
        request=HeartbeatInput,
        responses={
            200: HeartbeatOutput,
            426: AGENT_TOO_OLD_RESPONSE,
        },
    )
    def post(self, request):
        data = HeartbeatInput(data=request.data)
        data.is_valid(raise_exception=True)
        versions.refuse_too_old(agent=self.agent, request=request._request, version=data.validated_data["version"])
        agent = services.agent_heartbeat(
            agent=self.agent, signed_at=signing.signed_at(request._request), **data.validated_data
        )
        return Response(
            {"agent_id": str(agent.pk), "name": agent.name, "labels": agent.labels, "server_time": timezone.now()}
        )


# --- events ------------------------------------------------------------------------------------------

EVENT_TYPES = ("job_started", "step_started", "log", "step_finished")
STEP_FINAL = [s for s in StepStatus.values if s not in (StepStatus.RUNNING, StepStatus.PENDING)]


@extend_schema_field(OpenApiTypes.STR)
class LogTextField(serializers.Field):
    """Log text exactly as sent (no trimming); NUL, which databases cannot store, becomes U+FFFD."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.")
        return data.replace("\x00", "\ufffd")

    def to_representation(self, value):
        return value


class WorkflowStepInput(serializers.Serializer):
    name = StrictCharField(max_length=200, allow_blank=True)


class EventInput(serializers.Serializer):
    seq = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    type = serializers.ChoiceField(choices=EVENT_TYPES)
    at = serializers.DateTimeField(required=False, allow_null=True)
    timeout_minutes = serializers.FloatField(min_value=0.01, max_value=7 * 24 * 60, required=False, allow_null=True)
    step = serializers.IntegerField(min_value=0, max_value=10_000, required=False, allow_null=True)
    name = StrictCharField(max_length=200, required=False, allow_blank=True)
    data = LogTextField(required=False)
    status = serializers.ChoiceField(choices=STEP_FINAL, required=False)
    exit_code = serializers.IntegerField(required=False, allow_null=True, min_value=-(2**31), max_value=2**31 - 1)
    # job_started: every step of the parsed workflow, so the job page lists them before they run.
    steps = WorkflowStepInput(many=True, required=False, max_length=1000)
    # log: "stderr" marks a step's standard error (default stdout).
    stream = serializers.ChoiceField(choices=["stdout", "stderr"], required=False)
    # step_finished: a failure the workflow allows (continue-on-error).
    allowed = StrictBooleanField(required=False)

    def validate(self, attrs):
        kind = attrs["type"]
        if kind in ("step_started", "step_finished") and attrs.get("step") is None:
            raise serializers.ValidationError({"step": [f"{kind} needs a step index."]})
        if kind == "step_finished" and not attrs.get("status"):
            raise serializers.ValidationError({"status": ["step_finished needs a status."]})
        if kind == "log" and "data" not in attrs:
            raise serializers.ValidationError({"data": ["A log event needs data."]})
        return attrs


class EventsInput(serializers.Serializer):
    events = EventInput(many=True, max_length=2000)


class EventsOutput(serializers.Serializer):
    accepted_through = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()


class JobEventsView(AgentAPIView):
    @extend_schema(request=EventsInput, responses={200: EventsOutput})
    def post(self, request, job_id):
        job = self.agent_job(job_id)
        data = EventsInput(data=request.data)
        data.is_valid(raise_exception=True)
        # job_record_events takes the events as the agent names them (timeoutMinutes,
        # exitCode): the serializer checked them in snake_case, so hand them back as sent.
        events = camelize(data.validated_data["events"])
        accepted, cancel = job_services.job_record_events(job=job, events=events)
        return Response({"accepted_through": accepted, "cancel_requested": cancel})


# --- finish ----------------------------------------------------------------------------------------------


class FinishInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["succeeded", "failed", "cancelled"])
    exit_code = serializers.IntegerField(required=False, allow_null=True, min_value=-(2**31), max_value=2**31 - 1)
    error = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=10_000)


class FinishOutput(serializers.Serializer):
    id = serializers.UUIDField()
    status = StrictCharField()


class JobFinishView(AgentAPIView):
    @extend_schema(request=FinishInput, responses={200: FinishOutput})
    def post(self, request, job_id):
        job = self.agent_job(job_id)
        data = FinishInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        job = job_services.job_finish(job=job, status=v["status"], exit_code=v.get("exit_code"), error=v.get("error"))
        return Response({"id": str(job.pk), "status": job.status})


# --- file download URL -------------------------------------------------------------------------------------


class AgentDownloadUrlOutput(serializers.Serializer):
    download_url = serializers.URLField()
    expires_in_seconds = serializers.IntegerField()
    file_name = StrictCharField()
    size = serializers.IntegerField()


class FileDownloadUrlView(AgentAPIView):
    """Signed by the agent (any available file of its org), or `Authorization: Bearer $DEPLITE_JOB_TOKEN`
    from inside a step (only that running job's input files)."""

    authentication_classes = [JobTokenAuthentication, AgentSignatureAuthentication]

    @extend_schema(request=None, responses={200: AgentDownloadUrlOutput})
    def get(self, request, file_id):
        if isinstance(request.auth, Job):
            return Response(job_file_download_url(job=request.auth, file_id=file_id))
        return Response(agent_file_download_url(agent=self.agent, file_id=file_id))


def _file_pk(file_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(file_id))
    except ValueError:
        raise NotFound("File not found.") from None


def agent_file_download_url(*, agent: Agent, file_id: str) -> dict:
    """A presigned GET for one of the agent's org's available files (Conflict otherwise)."""
    return _download_url(org=agent.org, pk=_file_pk(file_id))


def job_file_download_url(*, job: Job, file_id: str) -> dict:
    """A presigned GET for one of a running job's input files; any other file is a 404."""
    pk = _file_pk(file_id)
    if str(pk) not in {str(f.get("fileId")) for f in job.input_files or []}:
        raise NotFound("File not found.")
    return _download_url(org=job.org, pk=pk)


def _download_url(*, org, pk: uuid.UUID) -> dict:
    stored = storage_selectors.file_get(org=org, file_id=pk)
    if stored is None:
        raise NotFound("File not found.")
    url, expires_in = storage_services.file_download_url(file=stored)
    return {"download_url": url, "expires_in_seconds": expires_in, "file_name": stored.file_name, "size": stored.size}


# --- claim (long poll) --------------------------------------------------------------------------------------


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
    """Wait for `awaitable` or for `stop` (the process is stopping), whichever comes first."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    if task not in done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, redis.RedisError, OSError):
            await task
    elif task.exception() is not None:
        raise task.exception()


def _observe_wakeup(payload: dict) -> None:
    created = datetime.fromisoformat(payload["createdAt"].replace("Z", "+00:00"))
    metrics.CLAIM_WAKEUP_SECONDS.observe(max(0.0, (timezone.now() - created).total_seconds()))


async def _wait_and_claim(agent: Agent, wait: float) -> dict | None:
    """Claim now, else wait up to `wait` seconds for a wake-up addressed to this claim.

    A process told to stop (SIGTERM) answers at once (204) so the agent reconnects to a
    process that stays."""
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
                hub = None
        if hub is not None:
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
                        break  # Redis went away: poll below
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
        else:
            logger.info("Agent wake-ups unavailable; agent %s polls.", agent.pk)
        while True:
            payload = await claim(agent)
            left = deadline - loop.time()
            if payload is not None or left <= 0 or stop_event.is_set():
                return payload
            await _until_first(asyncio.sleep(min(left, POLL_SECONDS)), stop)
    finally:
        stop.cancel()


class ClaimInputFile(serializers.Serializer):
    param = StrictCharField()
    file_id = serializers.UUIDField()
    file_name = StrictCharField()
    size = serializers.IntegerField(allow_null=True)


class ClaimTrigger(serializers.Serializer):
    id = serializers.UUIDField(allow_null=True, help_text="Null once the trigger is deleted.")
    name = StrictCharField()


class ClaimOutput(serializers.Serializer):
    """`triggers.payloads.job_claim_payload`: the claimed job, with the credential its steps get."""

    id = serializers.UUIDField()
    short_id = StrictCharField()
    ref = StrictCharField()
    params = serializers.DictField(child=StrictCharField())
    workflow = StrictCharField()
    trigger = ClaimTrigger()
    input_files = ClaimInputFile(many=True)
    created_at = serializers.DateTimeField()
    job_token = StrictCharField(help_text="DEPLITE_JOB_TOKEN for the job's steps; only its hash is stored.")


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
