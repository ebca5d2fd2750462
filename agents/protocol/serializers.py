"""What the agent protocol's requests and answers hold: snake_case here, camelCase on the wire
(`deplite.api.camel`), as everywhere in the API."""

from __future__ import annotations

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from deplite.api.fields import DocumentedPattern, StrictBooleanField, StrictCharField, StrictRegexField, rule
from storage import names
from triggers.models import StepStatus

SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}\Z")

AGENT_TOO_OLD_RESPONSE = OpenApiResponse(
    description="`agent_too_old`: the agent is older than the oldest version the server speaks "
    "(DEPLITE_AGENT_MIN_VERSION); the message is the command that upgrades it."
)


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


# --- finish ----------------------------------------------------------------------------------------------


class FinishInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["succeeded", "failed", "cancelled"])
    exit_code = serializers.IntegerField(required=False, allow_null=True, min_value=-(2**31), max_value=2**31 - 1)
    error = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=10_000)


class FinishOutput(serializers.Serializer):
    id = serializers.UUIDField()
    status = StrictCharField()


# --- file download URL -------------------------------------------------------------------------------------


class AgentDownloadUrlOutput(serializers.Serializer):
    download_url = serializers.URLField()
    expires_in_seconds = serializers.IntegerField()
    file_name = StrictCharField()
    size = serializers.IntegerField()


# --- output files (a running job's own uploads) ----------------------------------------------------------


class OutputInput(serializers.Serializer):
    name = StrictCharField(max_length=255, trim_whitespace=False, validators=[DocumentedPattern(names.FILE_NAME_RE)])
    size = serializers.IntegerField(min_value=0, max_value=2**63 - 1)
    sha256 = StrictRegexField(SHA256_RE, help_text="Hex SHA-256 of the content (64 hex digits).")
    content_type = StrictCharField(
        max_length=255,
        required=False,
        default="application/octet-stream",
        validators=[DocumentedPattern(names.CONTENT_TYPE_RE)],
    )

    validate_name = rule(names.clean_file_name)
    validate_content_type = rule(names.clean_content_type)

    def validate_sha256(self, value: str) -> str:
        return value.lower()


class OutputOutput(serializers.Serializer):
    file_id = serializers.UUIDField()
    upload_url = serializers.URLField()
    method = serializers.ChoiceField(choices=["PUT"])
    headers = serializers.DictField(
        child=StrictCharField(), help_text="Every header the PUT must send, exactly (some are signed)."
    )


class OutputCompleteOutput(serializers.Serializer):
    file_id = serializers.UUIDField()
    name = StrictCharField()
    size = serializers.IntegerField()
    sha256 = StrictCharField()
    status = StrictCharField()


# --- claim -----------------------------------------------------------------------------------------------


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
