"""The environments API's bodies: what a client sends (rules, a lock) and what it reads back
(the rules, the lock, the current deployment, the live jobs counted and, on the detail, the queue)."""

from __future__ import annotations

from django.db.models.functions import Lower
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deplite.api.fields import (
    DocumentedPattern,
    RuleField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    rule,
    schema_pattern,
)
from deplite.links import absolute_url
from orgs.models import Membership, Role

from ..environments import rules as env_rules
from ..environments.models import MAX_REQUIRED_APPROVALS
from ..models import Concurrency, Environment, JobStatus, QueueOrder
from ..rules import MAX_REF
from ..templatetags.jobs import job_ref_cell


@extend_schema_field(
    {
        "type": "array",
        "maxItems": env_rules.MAX_ALLOWED_REFS,
        "items": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_REF,
            "pattern": schema_pattern(env_rules.REF_GLOB_RE),
        },
        "description": "Glob patterns a run's ref must match (`main`, `release/*`); empty: any ref.",
    }
)
class AllowedRefsField(RuleField):
    pass


class ApproversInput(serializers.Serializer):
    """Who may approve: `{"role": "admin"}` (members with at least that role) or
    `{"members": ["ana@example.com", …]}` (these members only, by email). Exactly one of the two."""

    role = serializers.ChoiceField(choices=Role.choices, required=False)
    members = serializers.ListField(child=serializers.EmailField(), required=False, max_length=50)


class EnvironmentInput(serializers.Serializer):
    """Create (name required) or PATCH (any rule; the name is fixed once created)."""

    name = StrictCharField(max_length=50, validators=[DocumentedPattern(env_rules.NAME_RE)])
    description = StrictCharField(max_length=300, required=False, allow_blank=True)
    concurrency = serializers.ChoiceField(choices=Concurrency.choices, required=False)
    queue = serializers.ChoiceField(choices=QueueOrder.choices, required=False)
    required_approvals = StrictIntegerField(min_value=0, max_value=MAX_REQUIRED_APPROVALS, required=False)
    approvers = ApproversInput(required=False)
    prevent_self_approval = StrictBooleanField(required=False)
    approval_timeout_seconds = StrictIntegerField(
        min_value=env_rules.MIN_APPROVAL_TIMEOUT_SECONDS,
        max_value=env_rules.MAX_APPROVAL_TIMEOUT_SECONDS,
        required=False,
    )
    allowed_refs = AllowedRefsField(env_rules.clean_allowed_refs, required=False)

    def __init__(self, *args, environment: Environment | None = None, **kwargs):
        self.environment = environment
        super().__init__(*args, partial=environment is not None, **kwargs)

    def validate_name(self, value):
        value = _check_name(self, value)
        if self.environment is not None and value != self.environment.name:
            raise serializers.ValidationError("An environment's name is fixed once created.")
        return value

    def validate_approvers(self, value):
        if ("role" in value) == ("members" in value):
            raise serializers.ValidationError('Give either "role" or "members", not both nor neither.')
        return value

    def service_kwargs(self, org) -> dict:
        """The validated rules as environment_create/update take them (model field names,
        `approver_ids` for named approvers)."""
        data = dict(self.validated_data)
        data.pop("name", None)
        approvers = data.pop("approvers", None)
        if approvers is not None:
            if "role" in approvers:
                data["approver_role"], data["approver_ids"] = approvers["role"], []
            else:
                data["approver_ids"] = _member_ids(org, approvers["members"])
        return data


def _member_ids(org, emails: list[str]) -> list[int]:
    wanted = {e.lower() for e in emails}
    found = dict(
        Membership.objects.filter(org=org)
        .annotate(email=Lower("user__email"))
        .filter(email__in=wanted)
        .values_list("email", "user_id")
    )
    unknown = sorted(wanted - set(found))
    if unknown:
        raise serializers.ValidationError(
            {"approvers": {"members": [f"Not a member of this organization: {', '.join(unknown)}."]}}
        )
    return list(found.values())


_check_name = rule(env_rules.clean_name)


class LockInput(serializers.Serializer):
    reason = StrictCharField(max_length=500)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Unlocks by itself then.")


class ApproversOutput(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, allow_null=True, help_text="Null when members are named.")
    members = serializers.ListField(child=serializers.EmailField())
    description = StrictCharField(help_text='In words: "owners and admins", or the named members.')


class LockOutput(serializers.Serializer):
    locked_by = StrictCharField(source="locked_by_label")
    reason = StrictCharField(source="lock_reason")
    locked_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(source="lock_expires_at", allow_null=True)


class DeploymentOutput(serializers.Serializer):
    """A job as an environment shows it: the ref (a commit SHA shortened, linked when the
    trigger names its repository), who, when."""

    job_id = serializers.UUIDField(source="id")
    short_id = StrictCharField()
    status = StrictCharField()
    ref = StrictCharField()
    ref_shown = serializers.SerializerMethodField(help_text="A commit SHA shortened to 7; other refs whole.")
    commit_url = serializers.SerializerMethodField(help_text="The commit's page, or blank.")
    trigger_name = StrictCharField()
    actor = StrictCharField(source="actor_label")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()

    def get_ref_shown(self, job) -> str:
        return job_ref_cell(job)["ref_shown"] if job.ref else ""

    def get_commit_url(self, job) -> str:
        return job_ref_cell(job)["commit_url"] if job.ref else ""

    def get_url(self, job) -> str:
        return absolute_url("job-detail", org_slug=self.context["org"].slug, job_id=job.id)


class CountsOutput(serializers.Serializer):
    running = serializers.IntegerField()
    queued = serializers.IntegerField()
    waiting = serializers.IntegerField()
    pending_approval = serializers.IntegerField()


class QueueEntryOutput(serializers.Serializer):
    position = serializers.IntegerField(allow_null=True, help_text="1 = next; null for running, queued, pending.")
    waiting_reason = StrictCharField(source="reason", allow_null=True)
    job = DeploymentOutput()


class EnvironmentOutput(serializers.ModelSerializer):
    required_approvals = serializers.IntegerField()
    approvers = serializers.SerializerMethodField()
    allowed_refs = serializers.ListField(child=StrictCharField())
    lock = serializers.SerializerMethodField(help_text="Null when not locked (or the lock expired).")
    current = serializers.SerializerMethodField(help_text="The last succeeded deployment, or null.")
    counts = serializers.SerializerMethodField(help_text="Its live jobs by state.")

    class Meta:
        model = Environment
        fields = [
            "id",
            "name",
            "description",
            "concurrency",
            "queue",
            "required_approvals",
            "approvers",
            "prevent_self_approval",
            "approval_timeout_seconds",
            "allowed_refs",
            "lock",
            "current",
            "counts",
            "created_at",
            "updated_at",
        ]

    def _summary(self, environment):
        return self.context["summaries"][environment.pk]

    @extend_schema_field(ApproversOutput)
    def get_approvers(self, environment) -> dict:
        # `approvers` is prefetched by the view: one query for the whole list.
        members = sorted(user.email for user in environment.approvers.all())
        words = {Role.MEMBER: "members", Role.ADMIN: "owners and admins", Role.OWNER: "owners"}
        return {
            "role": None if members else environment.approver_role,
            "members": members,
            "description": ", ".join(members) if members else words[environment.approver_role],
        }

    @extend_schema_field(LockOutput(allow_null=True))
    def get_lock(self, environment) -> dict | None:
        return LockOutput(environment).data if environment.is_locked() else None

    @extend_schema_field(DeploymentOutput(allow_null=True))
    def get_current(self, environment) -> dict | None:
        current = self._summary(environment).current
        return DeploymentOutput(current, context=self.context).data if current else None

    @extend_schema_field(CountsOutput)
    def get_counts(self, environment) -> dict:
        counts = self._summary(environment).counts
        return {
            "running": counts.get(JobStatus.RUNNING, 0),
            "queued": counts.get(JobStatus.QUEUED, 0),
            "waiting": counts.get(JobStatus.WAITING, 0),
            "pending_approval": counts.get(JobStatus.PENDING_APPROVAL, 0),
        }


class EnvironmentDetailOutput(EnvironmentOutput):
    # Not `queue`: that is the rule (fifo or newest).
    live_jobs = serializers.SerializerMethodField(
        help_text="What runs, then what waits in the order it will run (with why), then what awaits approval."
    )

    class Meta(EnvironmentOutput.Meta):
        fields = [*EnvironmentOutput.Meta.fields, "live_jobs"]

    @extend_schema_field(QueueEntryOutput(many=True))
    def get_live_jobs(self, environment) -> list[dict]:
        entries = [
            {"position": e.position, "reason": e.reason if e.job.status == JobStatus.WAITING else None, "job": e.job}
            for e in self.context["queue"]
        ]
        return QueueEntryOutput(entries, many=True, context=self.context).data
