"""The schema tells generated clients the truth: a schemathesis run against `/api/schema/`,
over real HTTP to the live app, with every check schemathesis has (`--checks all`: no server
error, status codes, content types, response headers and bodies as documented, schema-valid
data accepted, invalid data rejected, missing auth refused, resources usable after create and
gone after delete, …), finds nothing.

Path parameters are real: the test seeds one organization with an object of every kind
(binding on the local S3 server, file, trigger, job with steps and a notification, agent,
token, member, invitation, chat installation) and gives each operation the id it needs, so
requests reach the serializers and the database instead of stopping at a 404. Operations that
delete get spare objects of their own, so the others keep working. The run authenticates as
the org's owner (a JWT); the agent protocol is signed per request by tests/api/fuzz_hooks.py.

Bounded here (a few examples per operation, ≲ 90 s); `DEPLITE_FUZZ_FULL=1` (or `make fuzz`)
runs the full budget, ≥ 2,000 requests. Every request stays on loopback: the app is pytest-
django's live server and the bucket is moto's server.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.core.signals import request_finished
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from orgs.models import Invitation, Role
from tests.factories import (
    AgentFactory,
    EnvironmentFactory,
    InstallationFactory,
    JobFactory,
    MembershipFactory,
    OrganizationFactory,
    OutboxMessageFactory,
    ScheduleFactory,
    StorageBindingFactory,
    StoredFileFactory,
    TriggerFactory,
    make_token,
)
from tests.s3_server import ADMIN_KEY, ADMIN_SECRET
from triggers.models import JobFile, JobStatus, JobStep, StepStatus
from triggers.services.claims import job_token_hash

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

FULL = bool(os.environ.get("DEPLITE_FUZZ_FULL"))
# Test cases per operation and phase. The full run's budget gives well over 2,000 requests.
MAX_EXAMPLES = int(os.environ.get("DEPLITE_FUZZ_MAX_EXAMPLES", "40" if FULL else "3"))
SEED = int(os.environ.get("DEPLITE_FUZZ_SEED", "20261129"))
MIN_FULL_REQUESTS = 2000
MIN_BOUNDED_REQUESTS = 500  # a run that reached the operations at all (the CI run sends ~2,400)
REPO = Path(__file__).resolve().parents[2]
# The seeded running job's DEPLITE_JOB_TOKEN (only its hash is stored).
JOB_TOKEN = "djt_fuzz" + "0" * 40  # noqa: S105 (a test credential)


def _jwt(user) -> str:
    # Long enough for the full run; the default 15 minutes could end it half-way.
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(hours=2))
    return str(token)


def _seed(s3_admin, moto_url: str) -> dict:
    """One organization with a real object of every kind the API names by id."""
    org = OrganizationFactory(name="Fuzz", slug="fuzz")
    owner = MembershipFactory(org=org, role=Role.OWNER, user__email="owner@fuzz.test").user
    EmailAddress.objects.create(user=owner, email=owner.email, verified=True, primary=True)
    member = MembershipFactory(org=org, role=Role.MEMBER, user__email="member@fuzz.test")
    spare_member = MembershipFactory(org=org, role=Role.MEMBER, user__email="leaver@fuzz.test")
    # "Log out everywhere" ends every login of its caller: it gets a user of its own.
    leaver = MembershipFactory(org=org, role=Role.ADMIN, user__email="logout@fuzz.test").user

    bucket = "fuzz-bucket"
    s3_admin.create_bucket(Bucket=bucket)
    s3_admin.put_object(Bucket=bucket, Key="deplite/fuzz/app.tar.gz", Body=b"x" * 10)
    binding_fields = dict(
        endpoint=moto_url, region="us-east-1", bucket=bucket, access_key=ADMIN_KEY, secret_key=ADMIN_SECRET
    )
    binding = StorageBindingFactory(org=org, name="artifacts", **binding_fields)
    spare_binding = StorageBindingFactory(org=org, name="old-artifacts", **binding_fields)
    stored = StoredFileFactory(
        org=org,
        binding=binding,
        file_name="app.tar.gz",
        object_key="deplite/fuzz/app.tar.gz",
        status="available",
        size=10,
    )
    spare_file = StoredFileFactory(org=org, binding=binding, file_name="old.tar.gz", status="available", size=10)

    # Its jobs' output files go to `binding` (the org has two: without it, no_output_binding).
    trigger = TriggerFactory(
        org=org, name="deploy-prod", workflow="deploy", agent_labels=["prod"], output_binding=binding
    )
    spare_trigger = TriggerFactory(org=org, name="deploy-old", workflow="deploy")
    schedule = ScheduleFactory(org=org, trigger=trigger, cron="0 9 * * 1-5", timezone="Europe/Berlin", created_by=owner)
    spare_schedule = ScheduleFactory(org=org, trigger=trigger, cron="0 3 * * *", created_by=owner)
    now = timezone.now()
    # The agent that signs the protocol requests; never named by a management operation, so
    # rotating or revoking an agent does not cut the run's own agent credential.
    proto_agent = AgentFactory(org=org, name="web-1", labels=["prod"], last_seen_at=now)
    agent = AgentFactory(org=org, name="web-2", labels=["prod"])
    spare_agent = AgentFactory(org=org, name="web-3")
    finished = JobFactory(
        org=org,
        trigger=trigger,
        status=JobStatus.FAILED,
        params={"ENV": "production"},
        agent_id=proto_agent.pk,
        agent_name=proto_agent.name,
        claimed_at=now,
        started_at=now,
        finished_at=now,
        exit_code=2,
        error='step "migrate" exited with code 2',
        notify_provider="slack",
        notify_team_id="T0FUZZ",
        notify_channel_id="C0FUZZ",
        notify_on="always",
    )
    JobStep.objects.create(
        org=org,
        job=finished,
        index=0,
        name="build",
        status=StepStatus.SUCCEEDED,
        started_at=now,
        finished_at=now,
        exit_code=0,
    )
    JobStep.objects.create(
        org=org,
        job=finished,
        index=1,
        name="migrate",
        status=StepStatus.FAILED,
        started_at=now,
        finished_at=now,
        exit_code=2,
    )
    JobStep.objects.create(org=org, job=finished, index=2, name="restart", status=StepStatus.SKIPPED)
    # Its own DEPLITE_JOB_TOKEN is known, so the job-token routes (output uploads) get past authentication.
    running = JobFactory(
        org=org,
        trigger=trigger,
        status=JobStatus.RUNNING,
        agent_id=proto_agent.pk,
        agent_name=proto_agent.name,
        claimed_at=now,
        started_at=now,
        job_token_hash=job_token_hash(JOB_TOKEN),
    )
    output = StoredFileFactory(
        org=org,
        binding=binding,
        file_name="report.html",
        status="pending",
        declared_size=10,
        sha256="0" * 64,
        job_id=running.pk,
    )
    JobFile.objects.create(org=org, job=running, file=output, direction="output")
    JobStep.objects.create(org=org, job=running, index=0, name="build", status=StepStatus.RUNNING, started_at=now)
    JobFactory(org=org, trigger=trigger)  # queued: never claimed, no agent yet
    # An environment with two deployments (so rollback has one to go back to) and a job awaiting
    # approval; its own trigger, so rules the run fuzzes onto it never gate the run operations.
    production = EnvironmentFactory(org=org, name="production", required_approvals=1)
    spare_environment = EnvironmentFactory(org=org, name="old-env")
    env_trigger = TriggerFactory(org=org, name="deploy-env", workflow="deploy", environment=production)
    for minutes in (2, 1):
        JobFactory(
            org=org,
            trigger=env_trigger,
            environment=production,
            environment_name="production",
            status=JobStatus.SUCCEEDED,
            finished_at=now - timedelta(minutes=minutes),
        )
    awaiting = JobFactory(
        org=org,
        trigger=env_trigger,
        environment=production,
        environment_name="production",
        status=JobStatus.PENDING_APPROVAL,
        requested_by=member.user,
    )
    installation = InstallationFactory(org=org, provider="slack", external_id="T0FUZZ")
    delivery = OutboxMessageFactory(org=org, job=finished, channel="C0FUZZ")
    token, _ = make_token(org, name="ci")
    spare_token, _ = make_token(org, name="old-ci")
    make_token(org, name="expiring", expires_at=now + timedelta(days=30))

    other = OrganizationFactory(name="Other", slug="other")
    MembershipFactory(org=other, role=Role.OWNER, user__email="boss@other.test")
    invitation = Invitation.objects.create(org=other, email=owner.email, role=Role.MEMBER)
    Invitation.objects.create(org=org, email="newhire@fuzz.test", role=Role.ADMIN, invited_by=owner)

    return {
        "owner": owner,
        "leaver": leaver,
        "proto_agent": proto_agent,
        "org_id": str(org.pk),  # the UUID: a PATCH that renames the slug must not strand the run
        "ids": {
            "binding": binding.pk,
            "spare_binding": spare_binding.pk,
            "file": stored.pk,
            "spare_file": spare_file.pk,
            "trigger": trigger.pk,
            "spare_trigger": spare_trigger.pk,
            "agent": agent.pk,
            "spare_agent": spare_agent.pk,
            "job": finished.pk,
            "running_job": running.pk,
            "installation": installation.pk,
            "delivery": delivery.pk,
            "token": token.pk,
            "spare_token": spare_token.pk,
            "member": member.pk,
            "spare_member": spare_member.pk,
            "invitation": invitation.pk,
            "output": output.pk,
            "schedule": schedule.pk,
            "spare_schedule": spare_schedule.pk,
            "environment": production.name,
            "spare_environment": spare_environment.name,
            "awaiting_job": awaiting.pk,
        },
    }


def _operation_parameters(ids: dict) -> dict[str, dict[str, str]]:
    """operationId → the parameters it is sent with (beyond `org_id`): path parameters by name,
    body fields as `body.<wireName>`."""
    i = {name: str(value) for name, value in ids.items()}
    return {
        "api_orgs_agents_retrieve": {"id": i["agent"]},
        "api_orgs_agents_rotate_secret_create": {"id": i["agent"]},
        "api_orgs_agents_destroy": {"id": i["spare_agent"]},
        "api_orgs_files_retrieve": {"id": i["file"]},
        "api_orgs_files_complete_create": {"id": i["file"]},
        "api_orgs_files_download_url_retrieve": {"id": i["file"]},
        "api_orgs_files_destroy": {"id": i["spare_file"]},
        "api_orgs_files_presign_upload_create": {"body.bindingId": i["binding"]},
        "api_orgs_integrations_destroy": {"id": i["installation"]},
        "api_orgs_jobs_retrieve": {"id": i["job"]},
        "api_orgs_jobs_logs_retrieve": {"id": i["job"]},
        "api_orgs_jobs_cancel_create": {"id": i["running_job"]},
        "api_orgs_jobs_rerun_create": {"id": i["job"]},
        "api_orgs_jobs_notifications_retry_create": {"job_id": i["job"], "id": i["delivery"]},
        "api_orgs_members_partial_update": {"id": i["member"]},
        "api_orgs_members_destroy": {"id": i["spare_member"]},
        "api_orgs_storage_bindings_retrieve": {"id": i["binding"]},
        "api_orgs_storage_bindings_partial_update": {"id": i["binding"]},
        "api_orgs_storage_bindings_test_create": {"id": i["binding"]},
        "api_orgs_storage_bindings_destroy": {"id": i["spare_binding"]},
        "api_orgs_tokens_destroy": {"id": i["spare_token"]},
        "api_orgs_triggers_retrieve": {"id": i["trigger"]},
        "api_orgs_triggers_partial_update": {"id": i["trigger"]},
        "api_orgs_triggers_destroy": {"id": i["spare_trigger"]},
        "api_orgs_triggers_schedules_list": {"trigger_id": i["trigger"]},
        "api_orgs_triggers_schedules_create": {"trigger_id": i["trigger"]},
        "api_orgs_triggers_schedules_retrieve": {"trigger_id": i["trigger"], "id": i["schedule"]},
        "api_orgs_triggers_schedules_partial_update": {"trigger_id": i["trigger"], "id": i["schedule"]},
        "api_orgs_triggers_schedules_destroy": {"trigger_id": i["trigger"], "id": i["spare_schedule"]},
        "api_orgs_environments_retrieve": {"name": i["environment"]},
        "api_orgs_environments_partial_update": {"name": i["environment"]},
        "api_orgs_environments_destroy": {"name": i["spare_environment"]},
        "api_orgs_environments_deployments_list": {"name": i["environment"]},
        "api_orgs_environments_lock_create": {"name": i["environment"]},
        "api_orgs_environments_unlock_create": {"name": i["environment"]},
        "api_orgs_environments_rollback_create": {"name": i["environment"]},
        "api_orgs_jobs_approve_create": {"id": i["awaiting_job"]},
        "api_orgs_jobs_reject_create": {"id": i["awaiting_job"]},
        "api_triggers_run_create": {"trigger_id": i["trigger"]},
        "triggers_run_create": {"trigger_id": i["trigger"]},
        "api_invitations_accept_create": {"invitation_id": i["invitation"]},
        # wait=0: a claim that finds no job answers at once instead of holding the run for up to 30 s.
        "api_agent_jobs_claim_create": {"query.wait": "0"},
        "api_agent_jobs_events_create": {"job_id": i["running_job"]},
        "api_agent_jobs_finish_create": {"job_id": i["running_job"]},
        "api_agent_files_download_url_retrieve": {"file_id": i["file"]},
        "api_agent_jobs_outputs_create": {"job_id": i["running_job"]},
        "api_agent_jobs_outputs_complete_create": {"job_id": i["running_job"], "file_id": i["output"]},
    }


@pytest.fixture
def loopback_only(monkeypatch):
    """Every name the server resolves during the run must be a loopback address: the fuzzer
    writes storage endpoints (then tests them) and the server would otherwise look up, and
    connect to, whatever host it made up. A refused name is what an unresolvable host is."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        infos = real(host, *args, **kwargs) if _is_loopback_name(host) else []
        if not infos or not all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos):
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: off loopback (schema fuzz run)")
        return infos

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def no_delayed_ack(monkeypatch):
    """The live server writes a response in several small sends; with Nagle's algorithm on, each
    answer then waits out the client's delayed ACK (~40 ms), which is most of the run's time."""
    from django.core.servers.basehttp import WSGIRequestHandler

    setup = WSGIRequestHandler.setup

    def setup_nodelay(self):
        setup(self)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    monkeypatch.setattr(WSGIRequestHandler, "setup", setup_nodelay)


def _is_loopback_name(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host in ("localhost", None):
        return True
    try:
        return ipaddress.ip_address(str(host).strip("[]")).is_loopback
    except ValueError:
        return False


def _toml(value) -> str:
    return json.dumps(value)  # a JSON string or number is a TOML one


# Rules that hold between fields, or depend on the server's state, which JSON Schema (OpenAPI
# 3.0) cannot state: a request that fits the schema may still be refused by them, with a 400 (or
# the 422 of a reused Idempotency-Key). Only these operations, only these statuses, and every other
# check still runs on them; each entry says which rule. Everything a pattern can say is in the schema.
SCHEMA_CANNOT_SAY: dict[str, tuple[list[str], str]] = {
    "api_orgs_triggers_create": (
        ["400"],
        "a webhook trigger needs name and workflow; chat fields only on chat triggers",
    ),
    "api_orgs_triggers_partial_update": (["400"], "as create, on the merged trigger"),
    "api_orgs_triggers_schedules_create": (
        ["400"],
        "a cron expression cronsim parses (ranges per field, a date that exists), an IANA timezone name, param names",
    ),
    "api_orgs_triggers_schedules_partial_update": (["400"], "as create, on the merged schedule"),
    "api_orgs_tokens_create": (
        ["400"],
        "bindingIds/storagePermissions only on storage tokens, triggerIds only on "
        "trigger tokens, ids of this org, expiresAt in the future",
    ),
    "api_orgs_storage_bindings_create": (["400"], "the endpoint's host must resolve to an allowed address"),
    "api_orgs_storage_bindings_partial_update": (["400"], "as create"),
    "api_orgs_files_presign_upload_create": (
        ["400"],
        "a binding of this org; a file name of at most 255 UTF-8 bytes without invisible or unassigned Unicode",
    ),
    "api_triggers_run_create": (
        ["400", "422"],
        "param names (OpenAPI 3.0 has no propertyNames); a reused Idempotency-Key with another body",
    ),
    "triggers_run_create": (["400", "422"], "as api_triggers_run_create"),
    "api_orgs_jobs_rerun_create": (["400"], "param names (OpenAPI 3.0 has no propertyNames)"),
    "api_orgs_jobs_list": (["400"], "a cursor must be one this list gave out (it is opaque)"),
    "api_orgs_environments_create": (
        ["400"],
        "approvers names either a role or members (emails of this org's members); balanced [ ] in allowedRefs",
    ),
    "api_orgs_environments_partial_update": (["400"], "as create; the name is fixed once created"),
    "api_orgs_environments_lock_create": (["400"], "expiresAt in the future"),
    "api_orgs_environments_deployments_list": (["400"], "as api_orgs_jobs_list"),
    "api_agent_heartbeat_create": (
        ["426"],
        "a version older than DEPLITE_AGENT_MIN_VERSION is well-formed and refused (agent_too_old)",
    ),
    "api_agent_jobs_claim_create": (["426"], "as the heartbeat: the agent's last reported version is too old"),
    "api_agent_jobs_events_create": (
        ["400"],
        "an event's fields depend on its type (a step event needs a step index, a log line its data)",
    ),
    "api_agent_jobs_outputs_create": (
        ["400", "413"],
        "a file name of at most 255 UTF-8 bytes without invisible or "
        "unassigned Unicode; a size over the server's upload limit (a setting)",
    ),
}
POSITIVE_DEFAULT = ["2xx", "3xx", "401", "403", "404", "409", "429"]


def _config(seed: dict) -> str:
    lines = [
        f"hooks = {_toml('tests.api.fuzz_hooks')}",
        "[headers]",
        f"Authorization = {_toml('Bearer ' + _jwt(seed['owner']))}",
        "[parameters]",
        f'"path.org_id" = {_toml(seed["org_id"])}',
    ]
    operations: dict[str, list[str]] = {}
    for operation_id, params in _operation_parameters(seed["ids"]).items():
        operations.setdefault(operation_id, []).append(
            "parameters = { "
            + ", ".join(f'"{k if "." in k else "path." + k}" = {_toml(v)}' for k, v in params.items())
            + " }"
        )
    for operation_id, (statuses, _why) in SCHEMA_CANNOT_SAY.items():
        operations.setdefault(operation_id, []).append(
            f"checks.positive_data_acceptance.expected-statuses = {_toml(POSITIVE_DEFAULT + statuses)}"
        )
    for operation_id in ("api_agent_jobs_outputs_create", "api_agent_jobs_outputs_complete_create"):
        operations.setdefault(operation_id, []).append(
            f"headers = {{ Authorization = {_toml('Bearer ' + JOB_TOKEN)} }}"
        )
    operations.setdefault("api_auth_logout_everywhere_create", []).append(
        f"headers = {{ Authorization = {_toml('Bearer ' + _jwt(seed['leaver']))} }}"
    )
    for operation_id, entries in operations.items():
        lines += ["[[operations]]", f"include-operation-id = {_toml(operation_id)}", *entries]
    return "\n".join(lines) + "\n"


def test_schema_fuzz_finds_no_server_error_and_no_schema_violation(
    live_server, s3_admin, moto_url, settings, tmp_path, loopback_only, no_delayed_ack
):
    settings.DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS = True  # the bucket is moto's, on loopback
    # The run sends thousands of deliberately bad credentials from one address, where the
    # per-address limit (30 a minute, tests/orgs/test_tokens.py) would answer 429 instead of
    # the 401 being checked. Valid credentials are never limited either way.
    settings.DEPLITE_TOKEN_FAILURE_RATE = (1_000_000, 60)
    settings.DEPLITE_LOGIN_RATE = settings.DEPLITE_LOGIN_ADDRESS_RATE = (1_000_000, 60)
    seed = _seed(s3_admin, moto_url)
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(seed))

    served: list[int] = []

    def count(sender, **kwargs):
        served.append(1)

    request_finished.connect(count, weak=False, dispatch_uid="tests.schema_fuzz")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "PYTHONPATH": str(REPO),
        "DEPLITE_FUZZ_AGENT_ID": str(seed["proto_agent"].pk),
        "DEPLITE_FUZZ_AGENT_SECRET": seed["proto_agent"].secret,
        "SCHEMATHESIS_HOOKS": "",
        "NO_COLOR": "1",
    }
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{live_server.url}/api/schema/",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        # Hypothesis' own health checks judge the data generation (slow or heavily filtered
        # strategies), not the API; every API check above stays on.
        "--suppress-health-check",
        "all",
    ]
    # The bounded run fails fast; the full run reports every failure of a scenario, shrunk.
    command.append("--continue-on-failure" if FULL else "--no-shrink")
    started = time.monotonic()
    try:
        run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=3000)
    finally:
        request_finished.disconnect(dispatch_uid="tests.schema_fuzz")
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    # The whole report (every failure with its curl command) where it can be read after the run.
    out_file = Path(os.environ.get("DEPLITE_FUZZ_OUTPUT") or tmp_path / "schemathesis.txt")
    out_file.write_text(output)
    summary = (
        f"schema fuzz: {len(served)} requests served in {elapsed:.0f} s (max_examples={MAX_EXAMPLES}); "
        f"full report in {out_file}"
    )
    print(summary)
    print(output[-3000:])
    assert run.returncode == 0, f"{summary}\n{output[-3000:]}"
    assert len(served) >= (MIN_FULL_REQUESTS if FULL else MIN_BOUNDED_REQUESTS), summary
