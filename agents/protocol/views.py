"""The agent protocol's DRF views: heartbeat, a claimed job's events and finish, and a file's
download URL. Thin: an input serializer validates, a service writes, the answer is plain data."""

from __future__ import annotations

import uuid

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from deplite import logs
from deplite.api.camel import camelize
from deplite.api.errors import NotFound
from triggers import outputs as job_outputs
from triggers import services as job_services
from triggers.models import Job

from .. import selectors, services, signing, versions
from ..models import Agent
from .authentication import AgentSignatureAuthentication, JobTokenAuthentication
from .serializers import (
    AGENT_TOO_OLD_RESPONSE,
    AgentDownloadUrlOutput,
    EventsInput,
    EventsOutput,
    FinishInput,
    FinishOutput,
    HeartbeatInput,
    HeartbeatOutput,
    OutputCompleteOutput,
    OutputInput,
    OutputOutput,
)


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


class JobFinishView(AgentAPIView):
    @extend_schema(request=FinishInput, responses={200: FinishOutput})
    def post(self, request, job_id):
        job = self.agent_job(job_id)
        data = FinishInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        job = job_services.job_finish(job=job, status=v["status"], exit_code=v.get("exit_code"), error=v.get("error"))
        return Response({"id": str(job.pk), "status": job.status})


class FileDownloadUrlView(AgentAPIView):
    """Signed by the agent (any available file of its org), or `Authorization: Bearer $DEPLITE_JOB_TOKEN`
    from inside a step (only that running job's input files)."""

    authentication_classes = [JobTokenAuthentication, AgentSignatureAuthentication]

    @extend_schema(request=None, responses={200: AgentDownloadUrlOutput})
    def get(self, request, file_id):
        if isinstance(request.auth, Job):
            return Response(selectors.job_file_download_url(job=request.auth, file_id=file_id))
        return Response(selectors.agent_file_download_url(agent=self.agent, file_id=file_id))


class JobTokenAPIView(APIView):
    """Called from inside a step with `Authorization: Bearer $DEPLITE_JOB_TOKEN`: only that running job.
    A token whose job ended is a 401 (`invalid_job_token`); another job's id in the path is a 404."""

    authentication_classes = [JobTokenAuthentication]
    permission_classes = [IsAuthenticated]

    def token_job(self, job_id: str) -> Job:
        job = self.request.auth
        if str(job.pk) != str(job_id).lower():
            raise NotFound("Job not found.")
        logs.bind(job_id=job.pk)
        return job


class JobOutputsView(JobTokenAPIView):
    @extend_schema(
        request=OutputInput,
        responses={
            201: OutputOutput,
            413: OpenApiResponse(
                description="`file_too_large`: over the upload size limit (DEPLITE_MAX_UPLOAD_BYTES)."
            ),
        },
        description="Register a file the job will upload as its output and get its presigned PUT. 409 "
        "`no_output_binding` (set the trigger's outputBindingId), 409 `too_many_outputs` "
        "(DEPLITE_MAX_OUTPUTS_PER_JOB), 413 `file_too_large`.",
    )
    def post(self, request, job_id):
        job = self.token_job(job_id)
        data = OutputInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        file, url, headers = job_outputs.job_output_register(
            job=job, file_name=v["name"], size=v["size"], sha256=v["sha256"], content_type=v["content_type"]
        )
        return Response({"file_id": str(file.pk), "upload_url": url, "method": "PUT", "headers": headers}, status=201)


class JobOutputCompleteView(JobTokenAPIView):
    @extend_schema(
        request=None,
        responses={200: OutputCompleteOutput},
        description="The PUT is done: the server checks the object (size, SHA-256) at once. 409 "
        "`upload_incomplete` if it is missing or differs (the file is then failed; the message says why).",
    )
    def post(self, request, job_id, file_id):
        job = self.token_job(job_id)
        file = job_outputs.job_output_complete(job=job, file_id=file_id)
        return Response(
            {
                "file_id": str(file.pk),
                "name": file.file_name,
                "size": file.size,
                "sha256": file.sha256,
                "status": file.status,
            }
        )
