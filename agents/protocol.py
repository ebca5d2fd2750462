"""The agent protocol (`/api/agent/…`): every request is signed (agents.signing).

An agent sees only its own org's jobs and files, only jobs whose trigger labels it
carries (claim), and only the jobs it claimed (events, finish). Anything else is a 404.

The claim is a long poll. It is an async view so that, served by ASGI in production,
hundreds of idle agents wait as coroutines on one web process (each holding a Redis
subscription, not a thread or a database connection). Under WSGI (the embedded
default) Django runs it in the request thread, which is fine for a handful of agents.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import redis
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from deplite.api.camel import camelize
from deplite.api.errors import DepliteError, NotFound, ValidationFailed, error_response
from orgs.authentication import MachineUser
from storage import selectors as storage_selectors
from storage import services as storage_services
from triggers import services as job_services
from triggers import wakeups
from triggers.models import Job, StepStatus
from triggers.payloads import job_claim_payload

from . import services, signing
from .models import Agent

logger = logging.getLogger(__name__)

# A waiting claim re-checks the database this often even without a wake-up, so a lost
# wake-up costs at most this much latency. Wake-ups, not this, make claims prompt.
RECHECK_SECONDS = 5.0
# Without Redis (embedded default) there are no wake-ups: the wait polls at this pace.
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
        return job


# --- heartbeat -------------------------------------------------------------------------------------


class JobIdField(serializers.UUIDField):
    """A job id as the claim gave it: a UUID string. DRF would also take an integer as a UUID."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class HeartbeatInput(serializers.Serializer):
    hostname = serializers.CharField(max_length=255, allow_blank=True, required=False, default="")
    version = serializers.CharField(max_length=50, allow_blank=True, required=False, default="")
    workflows = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=500, required=False, default=list
    )
    # The jobs the agent runs or still reports on. Absent (an older agent): nothing is inferred from it.
    running_jobs = serializers.ListField(child=JobIdField(), max_length=1000, required=False)


class HeartbeatOutput(serializers.Serializer):
    agent_id = serializers.UUIDField()
    name = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField())
    server_time = serializers.DateTimeField()


class HeartbeatView(AgentAPIView):
    @extend_schema(request=HeartbeatInput, responses={200: HeartbeatOutput})
    def post(self, request):
        data = HeartbeatInput(data=request.data)
        data.is_valid(raise_exception=True)
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
    name = serializers.CharField(max_length=200, allow_blank=True)


class EventInput(serializers.Serializer):
    seq = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    type = serializers.ChoiceField(choices=EVENT_TYPES)
    at = serializers.DateTimeField(required=False, allow_null=True)
    timeout_minutes = serializers.FloatField(min_value=0.01, max_value=7 * 24 * 60, required=False, allow_null=True)
    step = serializers.IntegerField(min_value=0, max_value=10_000, required=False, allow_null=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    data = LogTextField(required=False)
    status = serializers.ChoiceField(choices=STEP_FINAL, required=False)
    exit_code = serializers.IntegerField(required=False, allow_null=True, min_value=-(2**31), max_value=2**31 - 1)
    # job_started: every step of the parsed workflow, so the job page lists them before they run.
    steps = WorkflowStepInput(many=True, required=False, max_length=1000)
    # log: "stderr" marks a step's standard error (default stdout).
    stream = serializers.ChoiceField(choices=["stdout", "stderr"], required=False)
    # step_finished: a failure the workflow allows (continue-on-error).
    allowed = serializers.BooleanField(required=False)

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
    error = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=10_000)


class FinishOutput(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()


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
    file_name = serializers.CharField()
    size = serializers.IntegerField()


class FileDownloadUrlView(AgentAPIView):
    @extend_schema(request=None, responses={200: AgentDownloadUrlOutput})
    def get(self, request, file_id):
        return Response(agent_file_download_url(agent=self.agent, file_id=file_id))


def agent_file_download_url(*, agent: Agent, file_id: str) -> dict:
    """A presigned GET for one of the agent's org's available files (Conflict otherwise)."""
    try:
        pk = uuid.UUID(str(file_id))
    except ValueError:
        raise NotFound("File not found.") from None
    stored = storage_selectors.file_get(org=agent.org, file_id=pk)
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
        return signing.authenticate_request(request)
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


async def _wait_and_claim(agent: Agent, wait: float) -> dict | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    claim = sync_to_async(_claim_once)
    if settings.REDIS_URL:
        client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
        pubsub = client.pubsub()
        try:
            # Subscribe before the claim attempt: a job committed in between still wakes us.
            await pubsub.subscribe(wakeups.channel_for_org(agent.org_id))
            while True:
                payload = await claim(agent)
                left = deadline - loop.time()
                if payload is not None or left <= 0:
                    return payload
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=min(left, RECHECK_SECONDS))
        except (redis.RedisError, OSError):
            logger.warning("Agent wake-ups unavailable; agent %s falls back to polling.", agent.pk)
        finally:
            try:
                await pubsub.aclose()
                await client.aclose()
            except (redis.RedisError, OSError):
                pass  # the connection is already gone; nothing left to release
    while True:
        payload = await claim(agent)
        left = deadline - loop.time()
        if payload is not None or left <= 0:
            return payload
        await asyncio.sleep(min(left, POLL_SECONDS))


@csrf_exempt
async def claim_view(request):
    """`POST /api/agent/jobs/claim?wait=<0..30>` → 200 job or 204 after up to `wait` seconds."""
    if request.method != "POST":
        return error_response(405, "method_not_allowed", "Method not allowed.")
    try:
        agent = await sync_to_async(_authenticate_and_release)(request)
        wait = _parse_wait(request.GET.get("wait"))
        payload = await sync_to_async(_claim_once)(agent)
        if payload is None and wait > 0:
            payload = await _wait_and_claim(agent, wait)
    except DepliteError as exc:
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        if exc.status == 503:
            response["Retry-After"] = "5"
        return response
    if payload is None:
        return HttpResponse(status=204)
    return JsonResponse(payload)
