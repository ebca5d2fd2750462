"""Who makes an agent-protocol request: a signed agent (agents.signing), or a running job with
its own DEPLITE_JOB_TOKEN. Either is a machine, never a person (`orgs.authentication.MachineUser`)."""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication

from deplite.api.errors import Unauthenticated
from orgs.authentication import MachineUser
from triggers import services as job_services
from triggers.models import Job

from .. import signing
from ..models import Agent


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
            raise Unauthenticated(
                "The job token is invalid, or its job is no longer running.", code="invalid_job_token"
            )
        return JobPrincipal(job), job

    def authenticate_header(self, request):
        return "Bearer"
