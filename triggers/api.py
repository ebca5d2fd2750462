"""JSON API for triggers, jobs and the run endpoint.

Thin views: an input serializer validates, a service writes, an output serializer answers.
"""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from deplite.api.errors import Forbidden, NotFound, ValidationFailed
from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet, principal_for_org

from . import extensions, services
from .models import ChatProvider, Job, JobLogChunk, JobSource, JobStatus, NotifyOn, Trigger, TriggerType

# --- triggers ------------------------------------------------------------------------------------

# Workflow names become a file name on the agent (./workflows/<name>.yaml): no paths.
WORKFLOW_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,49}$")
KEYWORD_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,49}$")
CHAT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_FIELDS = {
    # wire name → model field
    "name": "name",
    "type": "type",
    "workflow": "workflow",
    "agentLabels": "agent_labels",
    "defaultRef": "default_ref",
    "enabled": "enabled",
    "chatProvider": "chat_provider",
    "chatTeamId": "chat_team_id",
    "chatChannelId": "chat_channel_id",
    "chatKeyword": "chat_keyword",
    "notifyProvider": "notify_provider",
    "notifyTeamId": "notify_team_id",
    "notifyChannelId": "notify_channel_id",
    "notifyOn": "notify_on",
}


class TriggerOutput(serializers.ModelSerializer):
    agentLabels = serializers.ListField(source="agent_labels", child=serializers.CharField())
    defaultRef = serializers.CharField(source="default_ref")
    chatProvider = serializers.CharField(source="chat_provider")
    chatTeamId = serializers.CharField(source="chat_team_id")
    chatChannelId = serializers.CharField(source="chat_channel_id")
    chatKeyword = serializers.CharField(source="chat_keyword")
    notifyProvider = serializers.CharField(source="notify_provider")
    notifyTeamId = serializers.CharField(source="notify_team_id")
    notifyChannelId = serializers.CharField(source="notify_channel_id")
    notifyOn = serializers.CharField(source="notify_on")
    runUrl = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = Trigger
        fields = ["id", *_FIELDS, "runUrl", "createdAt", "updatedAt"]

    def get_runUrl(self, obj) -> str:  # noqa: N802 (wire name)
        return f"{settings.DEPLITE_PUBLIC_URL}/triggers/{obj.id}/run"


def _chat_id(**kwargs):
    return serializers.RegexField(CHAT_ID_RE, required=False, allow_blank=True, **kwargs)


class TriggerInput(serializers.Serializer):
    """Create (all required fields) or PATCH (validated merged with the stored trigger)."""

    name = serializers.CharField(max_length=100)
    type = serializers.ChoiceField(choices=TriggerType.choices, default=TriggerType.WEBHOOK)
    workflow = serializers.RegexField(
        WORKFLOW_RE, error_messages={"invalid": "Use letters, digits, '.', '_' or '-' (a workflow file name)."}
    )
    agentLabels = serializers.ListField(
        child=serializers.RegexField(LABEL_RE), required=False, max_length=20, default=list
    )
    defaultRef = serializers.CharField(max_length=255, required=False, allow_blank=True, default="main")
    enabled = serializers.BooleanField(required=False, default=True)
    chatProvider = serializers.ChoiceField(choices=ChatProvider.choices, required=False, allow_blank=True, default="")
    chatTeamId = _chat_id(default="")
    chatChannelId = _chat_id(default="")
    chatKeyword = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    notifyProvider = serializers.ChoiceField(choices=ChatProvider.choices, required=False, allow_blank=True, default="")
    notifyTeamId = _chat_id(default="")
    notifyChannelId = _chat_id(default="")
    notifyOn = serializers.ChoiceField(choices=NotifyOn.choices, required=False, default=NotifyOn.ALWAYS)

    def validate_chatKeyword(self, value: str) -> str:  # noqa: N802
        value = value.strip().lower()
        if value and not KEYWORD_RE.match(value):
            raise serializers.ValidationError("Use one word: lowercase letters, digits, '.', '_' or '-'.")
        return value

    def validate_agentLabels(self, value: list[str]) -> list[str]:  # noqa: N802
        return sorted(set(value))

    def validate(self, attrs):
        kind = attrs["type"]
        errors: dict[str, list[str]] = {}
        if kind in (TriggerType.SLACK, TriggerType.DISCORD):
            attrs["chatProvider"] = attrs.get("chatProvider") or kind
            if attrs["chatProvider"] != kind:
                errors["chatProvider"] = [f"A {kind} trigger takes chatProvider {kind}."]
            for field in ("chatTeamId", "chatChannelId", "chatKeyword"):
                if not attrs.get(field):
                    errors[field] = [f"A {kind} trigger needs {field}."]
        elif any(attrs.get(f) for f in ("chatProvider", "chatTeamId", "chatChannelId", "chatKeyword")):
            errors["chatProvider"] = ["Only slack and discord triggers take chat fields."]
        if attrs.get("notifyProvider"):
            for field in ("notifyTeamId", "notifyChannelId"):
                if not attrs.get(field):
                    errors[field] = ["Needed when notifyProvider is set."]
        elif attrs.get("notifyTeamId") or attrs.get("notifyChannelId"):
            errors["notifyProvider"] = ["Set notifyProvider to send notifications to this channel."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _model_fields(validated: dict) -> dict:
    return {_FIELDS[k]: v for k, v in validated.items() if k in _FIELDS}


# The trigger pages (triggers/views.py) validate with TriggerInput too; these are their names.
TRIGGER_WIRE_FIELDS = _FIELDS
trigger_model_fields = _model_fields


class TriggerViewSet(OrgScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """`GET/POST /api/orgs/<orgId>/triggers`, `GET/PATCH/DELETE …/triggers/<id>`."""

    queryset = Trigger.objects.all()
    serializer_class = TriggerOutput
    permission_map = {
        "list": Perm.TRIGGERS_READ,
        "retrieve": Perm.TRIGGERS_READ,
        "create": Perm.TRIGGERS_MANAGE,
        "partial_update": Perm.TRIGGERS_MANAGE,
        "destroy": Perm.TRIGGERS_MANAGE,
    }
    filterset_fields = ["type", "enabled"]

    @extend_schema(request=TriggerInput, responses={201: TriggerOutput})
    def create(self, request, org_id):
        data = TriggerInput(data=request.data)
        data.is_valid(raise_exception=True)
        trigger = services.trigger_create(org=self.org, actor=self.actor, **_model_fields(data.validated_data))
        return Response(TriggerOutput(trigger).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TriggerInput, responses={200: TriggerOutput})
    def partial_update(self, request, org_id, pk):
        trigger = self.get_object()
        current = {wire: getattr(trigger, field) for wire, field in _FIELDS.items()}
        data = TriggerInput(data={**current, **request.data})
        data.is_valid(raise_exception=True)
        trigger = services.trigger_update(trigger=trigger, actor=self.actor, **_model_fields(data.validated_data))
        return Response(TriggerOutput(trigger).data)

    def destroy(self, request, org_id, pk):
        services.trigger_delete(trigger=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- the run endpoint ----------------------------------------------------------------------------

PARAM_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_PARAMS = 50
MAX_PARAM_KEY = 64
MAX_PARAM_VALUE = 4096
# Refs become an environment variable on the agent; control characters have no business there.
REF_RE = re.compile(r"^[^\x00-\x1f\x7f]*$")


class RunInput(serializers.Serializer):
    ref = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True, trim_whitespace=True)
    params = serializers.DictField(required=False, allow_null=True, allow_empty=True)

    def validate_ref(self, value):
        if value and not REF_RE.match(value):
            raise serializers.ValidationError("Control characters are not allowed.")
        return value or None

    def validate_params(self, value) -> dict[str, str]:
        if value is None:
            return {}
        if len(value) > MAX_PARAMS:
            raise serializers.ValidationError(f"At most {MAX_PARAMS} params.")
        out: dict[str, str] = {}
        for key, raw in value.items():
            if not PARAM_KEY_RE.match(key) or len(key) > MAX_PARAM_KEY:
                raise ValidationFailed(
                    f"params.{key[:64]}: a param name is letters, digits and '_' and does not start with a digit.",
                    details={"fields": {f"params.{key[:64]}": ["invalid name"]}},
                )
            if isinstance(raw, bool):
                text = "true" if raw else "false"
            elif isinstance(raw, str | int | float):
                text = str(raw)
            else:
                raise ValidationFailed(
                    f"params.{key}: a param value is a string, number or boolean.",
                    details={"fields": {f"params.{key}": ["must be a scalar"]}},
                )
            if len(text) > MAX_PARAM_VALUE or "\x00" in text:
                raise ValidationFailed(
                    f"params.{key}: at most {MAX_PARAM_VALUE} characters, no NUL.",
                    details={"fields": {f"params.{key}": ["too long or contains NUL"]}},
                )
            out[key] = text
        return out


class RunOutput(serializers.Serializer):
    jobId = serializers.UUIDField()
    shortId = serializers.CharField()
    status = serializers.CharField()
    ref = serializers.CharField()
    params = serializers.DictField(child=serializers.CharField())
    url = serializers.URLField()


IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")


class TriggerRunView(APIView):
    """`POST /triggers/<id>/run` and `POST /api/triggers/<id>/run`: queue a job.

    The URL names no org: the trigger's org is the one the caller must belong to (or
    whose token lists this trigger). Unknown and foreign triggers are both a 404.
    """

    @extend_schema(
        request=RunInput,
        responses={202: RunOutput},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
    )
    def post(self, request, trigger_id: str):
        try:
            pk = uuid.UUID(trigger_id)
        except ValueError:
            raise NotFound("Trigger not found.") from None
        trigger = Trigger.objects.select_related("org").filter(pk=pk).first()
        if trigger is None:
            raise NotFound("Trigger not found.")
        principal = principal_for_org(request, trigger.org)
        if not principal.restrict(Trigger.objects.filter(pk=pk)).exists():
            raise NotFound("Trigger not found.")
        if not principal.has(Perm.TRIGGERS_RUN):
            raise Forbidden("This caller may not run triggers.")
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY_RE.match(key):
            raise ValidationFailed("Idempotency-Key: 1–255 visible ASCII characters.", code="invalid_idempotency_key")
        data = RunInput(data=request.data)
        data.is_valid(raise_exception=True)
        ref, params = data.validated_data.get("ref"), data.validated_data.get("params") or {}
        result = services.trigger_run(
            trigger=trigger,
            actor=principal.actor,
            source=JobSource.API if request.path.startswith("/api/") else JobSource.WEBHOOK,
            ref=ref,
            params=params,
            idempotency_key=key,
            request_hash=services.run_request_hash(ref=ref, params=params),
        )
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        if result.job_id is not None:
            headers["Location"] = result.body.get("url", "")
        return Response(result.body, status=result.status, headers=headers)


# --- jobs ------------------------------------------------------------------------------------------


class JobStepOutput(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    startedAt = serializers.DateTimeField(source="started_at")
    finishedAt = serializers.DateTimeField(source="finished_at")
    exitCode = serializers.IntegerField(source="exit_code")


class JobOutput(serializers.ModelSerializer):
    shortId = serializers.CharField(source="short_id")
    triggerId = serializers.UUIDField(source="trigger_id")
    triggerName = serializers.CharField(source="trigger_name")
    agentLabels = serializers.ListField(source="agent_labels", child=serializers.CharField())
    inputFiles = serializers.JSONField(source="input_files")
    waitingForFiles = serializers.BooleanField(source="waiting_for_files")
    agentId = serializers.UUIDField(source="agent_id")
    agentName = serializers.CharField(source="agent_name")
    actor = serializers.CharField(source="actor_label")
    createdAt = serializers.DateTimeField(source="created_at")
    claimedAt = serializers.DateTimeField(source="claimed_at")
    startedAt = serializers.DateTimeField(source="started_at")
    finishedAt = serializers.DateTimeField(source="finished_at")
    timeoutMinutes = serializers.IntegerField(source="timeout_minutes")
    exitCode = serializers.IntegerField(source="exit_code")
    cancelRequested = serializers.BooleanField(source="cancel_requested")
    logTruncated = serializers.BooleanField(source="log_truncated")
    url = serializers.CharField()

    class Meta:
        model = Job
        fields = [
            "id",
            "shortId",
            "status",
            "triggerId",
            "triggerName",
            "workflow",
            "agentLabels",
            "ref",
            "params",
            "inputFiles",
            "waitingForFiles",
            "agentId",
            "agentName",
            "source",
            "actor",
            "createdAt",
            "claimedAt",
            "startedAt",
            "finishedAt",
            "timeoutMinutes",
            "exitCode",
            "error",
            "cancelRequested",
            "logTruncated",
            "url",
        ]


class JobNotificationOutput(serializers.Serializer):
    """Shape of one entry of `notifications` (filled by the notifications app through `extensions`)."""

    id = serializers.UUIDField()
    kind = serializers.CharField()
    provider = serializers.CharField()
    channel = serializers.CharField()
    status = serializers.CharField()
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    sentAt = serializers.DateTimeField(allow_null=True)


class JobDetailOutput(JobOutput):
    steps = JobStepOutput(many=True)
    notifications = serializers.SerializerMethodField()

    class Meta(JobOutput.Meta):
        fields = [*JobOutput.Meta.fields, "steps", "notifications"]

    @extend_schema_field(JobNotificationOutput(many=True))
    def get_notifications(self, job) -> list[dict]:
        return extensions.job_detail_field("notifications", job, default=[])


class JobLogChunkOutput(serializers.Serializer):
    seq = serializers.IntegerField()
    step = serializers.IntegerField()
    data = serializers.CharField()
    at = serializers.DateTimeField()


class JobLogsOutput(serializers.Serializer):
    chunks = JobLogChunkOutput(many=True)
    nextAfter = serializers.IntegerField()
    truncated = serializers.BooleanField()
    complete = serializers.BooleanField()


class JobFilter(filters.FilterSet):
    trigger = filters.UUIDFilter(field_name="trigger_id")
    status = filters.ChoiceFilter(choices=JobStatus.choices)

    class Meta:
        model = Job
        fields = ["trigger", "status"]


LOG_PAGE = 1000


class JobViewSet(OrgScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """`GET /api/orgs/<orgId>/jobs?trigger=&status=`, `GET …/jobs/<id>`, `GET …/jobs/<id>/logs?after=`,
    `POST …/jobs/<id>/cancel`."""

    queryset = Job.objects.all()
    serializer_class = JobOutput
    filterset_class = JobFilter
    permission_map = {
        "list": Perm.JOBS_READ,
        "retrieve": Perm.JOBS_READ,
        "logs": Perm.JOBS_READ,
        "cancel": Perm.JOBS_CANCEL,
    }

    def safely_get_queryset(self, queryset):
        queryset = queryset.select_related("org")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("steps")
        return queryset

    def get_serializer_class(self):
        return JobDetailOutput if self.action == "retrieve" else JobOutput

    @extend_schema(
        parameters=[OpenApiParameter("after", int, description="Return chunks with seq greater than this.")],
        responses={200: JobLogsOutput},
    )
    @action(detail=True, methods=["get"])
    def logs(self, request, org_id, pk):
        job = self.get_object()
        try:
            after = int(request.query_params.get("after") or 0)
        except ValueError:
            raise ValidationFailed("after: must be an integer.") from None
        chunks = list(JobLogChunk.objects.filter(job=job, seq__gt=after).order_by("seq")[:LOG_PAGE])
        next_after = chunks[-1].seq if chunks else max(after, 0)
        body = {
            "chunks": JobLogChunkOutput(chunks, many=True).data,
            "nextAfter": next_after,
            "truncated": job.log_truncated,
            "complete": job.is_final and next_after >= job.log_seq,
        }
        return Response(body)

    @extend_schema(request=None, responses={200: JobDetailOutput})
    @action(detail=True, methods=["post"])
    def cancel(self, request, org_id, pk):
        job = services.job_cancel(job=self.get_object(), actor=self.actor)
        return Response(JobDetailOutput(job).data)
