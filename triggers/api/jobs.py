"""Jobs: `GET /api/orgs/<orgId>/jobs?trigger=&status=&environment=`, `GET …/jobs/<id>`,
`GET …/jobs/<id>/logs?after=`, `GET …/jobs/<id>/files`, `POST …/jobs/<id>/cancel`, `POST …/jobs/<id>/rerun`,
`POST …/jobs/<id>/approve` and `…/reject` (an environment's approvals: a person's acts)."""

from __future__ import annotations

from django.db import connection
from django.db.models import Q
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from deplite.api.errors import ValidationFailed
from deplite.api.fields import StrictCharField
from deplite.api.pagination import KeysetPagination
from deplite.links import absolute_url
from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet

from .. import extensions, outputs, rules, services
from ..environments import selectors as env_selectors
from ..environments import services as env_services
from ..models import ApprovalDecision, Job, JobFileDirection, JobLogChunk, JobSource, JobStatus
from ..payloads import rollback_of_field
from .fields import ParamsField, RerunRefField
from .run import RunOutput


class RerunInput(serializers.Serializer):
    """`{"ref": …, "params": {…}}`: each given one replaces the job's; without them the job's own are
    used again. The ref is checked by the same rule as a run's (`rules.clean_ref`)."""

    ref = RerunRefField(rules.clean_ref, required=False, allow_null=True)
    params = ParamsField(rules.clean_params, required=False, allow_null=True)


class JobStepOutput(serializers.Serializer):
    index = serializers.IntegerField()
    name = StrictCharField()
    status = StrictCharField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    exit_code = serializers.IntegerField(allow_null=True)
    allowed_failure = serializers.BooleanField()


class RollbackOfOutput(serializers.Serializer):
    id = serializers.UUIDField()
    short_id = StrictCharField()


class JobOutput(serializers.ModelSerializer):
    trigger_id = serializers.UUIDField(allow_null=True)  # the trigger was deleted
    environment = serializers.SerializerMethodField(help_text="The environment's name, or null.")
    required_approvals = serializers.SerializerMethodField(
        help_text="Its environment's required approvals now; null without an environment."
    )
    rollback_of = serializers.SerializerMethodField(help_text="The deployment this rollback rolls back, or null.")
    agent_labels = serializers.ListField(child=StrictCharField())
    input_files = serializers.JSONField()
    # The wire says who asked as `actor`; the row keeps it as a label.
    actor = StrictCharField(source="actor_label")
    rerun_of = serializers.UUIDField(source="rerun_of_id", allow_null=True)
    url = StrictCharField()

    class Meta:
        model = Job
        fields = [
            "id",
            "short_id",
            "status",
            "trigger_id",
            "trigger_name",
            "workflow",
            "agent_labels",
            "ref",
            "params",
            "input_files",
            "waiting_for_files",
            "agent_id",
            "agent_name",
            "source",
            "actor",
            "created_at",
            "claimed_at",
            "started_at",
            "finished_at",
            "timeout_minutes",
            "exit_code",
            "error",
            "cancel_requested",
            "cancelled_by",
            "rerun_of",
            "environment",
            "required_approvals",
            "approved_at",
            "queued_at",
            "approval_expires_at",
            "rollback_of",
            "log_truncated",
            "url",
        ]

    def get_environment(self, job) -> str | None:
        # Copied onto the job: it stays when the environment is deleted.
        return job.environment_name or None

    def get_required_approvals(self, job) -> int | None:
        # The list joins the environment (JobViewSet.safely_get_queryset): no query per job.
        return job.environment.required_approvals if job.environment_id and job.environment else None

    @extend_schema_field(RollbackOfOutput(allow_null=True))
    def get_rollback_of(self, job) -> dict | None:
        return rollback_of_field(job)


class JobNotificationOutput(serializers.Serializer):
    """Shape of one entry of `notifications` (filled by the notifications app through `extensions`)."""

    id = serializers.UUIDField()
    kind = StrictCharField()
    provider = StrictCharField()
    channel = StrictCharField()
    status = StrictCharField()
    error = StrictCharField()
    attempts = serializers.IntegerField()
    sent_at = serializers.DateTimeField(allow_null=True)


class JobApprovalOutput(serializers.Serializer):
    user = StrictCharField(source="user_label", help_text="The approver's email when they decided.")
    decision = serializers.ChoiceField(choices=ApprovalDecision.choices)
    comment = StrictCharField()
    at = serializers.DateTimeField(source="created_at")


class JobDetailOutput(JobOutput):
    steps = JobStepOutput(many=True)
    notifications = serializers.SerializerMethodField()
    approvals = JobApprovalOutput(many=True, help_text="Each approver's decision (prefetched).")
    waiting_reason = serializers.SerializerMethodField(
        help_text='Why a waiting job waits ("behind #a1b2c3 (running for 2m)", "locked by …"); null otherwise.'
    )

    class Meta(JobOutput.Meta):
        fields = [*JobOutput.Meta.fields, "waiting_reason", "approvals", "steps", "notifications"]

    def get_waiting_reason(self, job) -> str | None:
        # Only a waiting job has one, and only the detail reads it (a few queries, never per row of a list).
        return (env_selectors.waiting_reason(job) or None) if job.status == JobStatus.WAITING else None

    @extend_schema_field(JobNotificationOutput(many=True))
    def get_notifications(self, job) -> list[dict]:
        return extensions.job_detail_field("notifications", job, default=[])


class JobLogChunkOutput(serializers.Serializer):
    seq = serializers.IntegerField()
    step = serializers.IntegerField()
    stream = serializers.SerializerMethodField()
    data = StrictCharField()
    at = serializers.DateTimeField()

    def get_stream(self, chunk) -> str:
        return chunk.stream or "stdout"


class JobLogsOutput(serializers.Serializer):
    chunks = JobLogChunkOutput(many=True)
    next_after = serializers.IntegerField()
    truncated = serializers.BooleanField()
    complete = serializers.BooleanField()


class JobFileOutput(serializers.Serializer):
    """A file the job used (`input`) or uploaded (`output`)."""

    id = serializers.UUIDField(source="file.id")
    name = StrictCharField(source="file.file_name")
    size = serializers.IntegerField(source="file.size", allow_null=True)
    sha256 = StrictCharField(source="file.sha256", help_text="Hex SHA-256; blank when it was never declared.")
    content_type = StrictCharField(source="file.content_type")
    direction = serializers.ChoiceField(choices=JobFileDirection.choices)
    status = StrictCharField(source="file.status")
    created_at = serializers.DateTimeField(source="file.created_at")
    download_url = serializers.SerializerMethodField(
        help_text="The API route that presigns a download (`GET …/files/<id>/download-url`, files:read)."
    )

    def get_download_url(self, link) -> str:
        return absolute_url("files-download-url", org_id=link.org_id, pk=link.file_id)


class JobFilesOutput(serializers.Serializer):
    files = JobFileOutput(many=True)


class ApprovalInput(serializers.Serializer):
    comment = StrictCharField(max_length=1000, required=False, allow_blank=True, default="")


class JobFilter(filters.FilterSet):
    trigger = filters.UUIDFilter(field_name="trigger_id")
    status = filters.ChoiceFilter(choices=JobStatus.choices)
    # By the name copied onto each job: an environment's jobs are still found after it is deleted.
    environment = filters.CharFilter(field_name="environment_name", max_length=50, label="Environment name")
    q = filters.CharFilter(method="search", max_length=200, label="Ref or params (text, or KEY=value)")

    class Meta:
        model = Job
        fields = ["trigger", "status", "environment", "q"]

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        # `KEY=value`: a param of exactly that value; on PostgreSQL as JSON containment (its GIN index).
        key, sep, wanted = value.partition("=")
        if sep and rules.PARAM_KEY_RE.match(key):
            if connection.vendor == "postgresql":
                return queryset.filter(params__contains={key: wanted})
            if "__" not in key:  # a param name, never an ORM lookup path
                return queryset.filter(**{f"params__{key}": wanted})
        # Trigram indexes on these two expressions (triggers/migrations/0001_initial.py).
        return queryset.filter(Q(ref__icontains=value) | Q(params__icontains=value))


LOG_PAGE = 1000


class JobViewSet(OrgScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """`GET /api/orgs/<orgId>/jobs?trigger=&status=`, `GET …/jobs/<id>`, `GET …/jobs/<id>/logs?after=`,
    `POST …/jobs/<id>/cancel`, `POST …/jobs/<id>/rerun`."""

    queryset = Job.objects.all()
    serializer_class = JobOutput
    filterset_class = JobFilter
    # Jobs grow without bound: keyset pages on the (org|trigger|status, created_at, id) indexes.
    pagination_class = KeysetPagination
    permission_map = {
        "list": Perm.JOBS_READ,
        "retrieve": Perm.JOBS_READ,
        "logs": Perm.JOBS_READ,
        "files": Perm.JOBS_READ,
        "cancel": Perm.JOBS_CANCEL,
        "rerun": Perm.TRIGGERS_RUN,
        # Whether this person may approve is the environment's rule (env_services.may_approve).
        "approve": Perm.TRIGGERS_RUN,
        "reject": Perm.TRIGGERS_RUN,
    }
    person_only_actions = frozenset({"approve", "reject"})

    def safely_get_queryset(self, queryset):
        queryset = queryset.select_related("org", "environment")
        if self.action in ("retrieve", "approve", "reject"):
            queryset = queryset.prefetch_related("steps", "approvals")
        return queryset

    def get_serializer_class(self):
        return JobDetailOutput if self.action == "retrieve" else JobOutput

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after", {"type": "integer", "minimum": 0}, description="Return chunks with seq greater than this."
            )
        ],
        responses={200: JobLogsOutput},
    )
    @action(detail=True, methods=["get"])
    def logs(self, request, org_id, pk):
        job = self.get_object()
        raw = request.query_params.get("after", "0")
        # Digits only: `?after=` or `?after=1_0` is a mistake to report, not a 0 or a 10 to guess.
        if not (raw.isascii() and raw.isdigit()):
            raise ValidationFailed("after: must be a whole number (0 or more).")
        after = int(raw)
        chunks = list(JobLogChunk.objects.filter(job=job, seq__gt=after).order_by("seq")[:LOG_PAGE])
        next_after = chunks[-1].seq if chunks else max(after, 0)
        body = {
            "chunks": chunks,
            "next_after": next_after,
            "truncated": job.log_truncated,
            "complete": job.is_final and next_after >= job.log_seq,
        }
        return Response(JobLogsOutput(body).data)

    @extend_schema(responses={200: JobFilesOutput})
    @action(detail=True, methods=["get"])
    def files(self, request, org_id, pk):
        """The job's input files and the files its steps uploaded."""
        links = outputs.job_files(self.get_object())
        return Response(JobFilesOutput({"files": links}, context={"request": request}).data)

    @extend_schema(request=None, responses={200: JobDetailOutput})
    @action(detail=True, methods=["post"])
    def cancel(self, request, org_id, pk):
        job = services.job_cancel(job=self.get_object(), actor=self.actor)
        return Response(JobDetailOutput(job).data)

    @extend_schema(request=RerunInput, responses={202: RunOutput})
    @action(detail=True, methods=["post"])
    def rerun(self, request, org_id, pk):
        """Run the job's trigger again with the same ref and params, or a new `ref` and/or `params`."""
        job = self.get_object()
        data = RerunInput(data=request.data)
        data.is_valid(raise_exception=True)
        ref, params = data.validated_data.get("ref"), data.validated_data.get("params")
        result = services.job_rerun(job=job, actor=self.actor, source=JobSource.API, ref=ref, params=params)
        return Response(result.body, status=result.status, headers={"Location": result.body["url"]})

    @extend_schema(request=ApprovalInput, responses={200: JobDetailOutput})
    @action(detail=True, methods=["post"])
    def approve(self, request, org_id, pk):
        """Approve a job waiting for approval (an eligible person; approving twice counts once). The
        approval that completes the count moves it on: `waiting`, then `queued` when its turn comes."""
        return self._decide(request, ApprovalDecision.APPROVED)

    @extend_schema(request=ApprovalInput, responses={200: JobDetailOutput})
    @action(detail=True, methods=["post"])
    def reject(self, request, org_id, pk):
        """Reject a job waiting for approval: it ends `cancelled` ("rejected by …: <comment>")."""
        return self._decide(request, ApprovalDecision.REJECTED)

    def _decide(self, request, decision: str) -> Response:
        job = self.get_object()
        data = ApprovalInput(data=request.data)
        data.is_valid(raise_exception=True)
        env_services.job_decide(job=job, actor=self.actor, decision=decision, comment=data.validated_data["comment"])
        return Response(JobDetailOutput(self.get_object()).data)
