"""`GET/POST /api/orgs/<orgId>/triggers`, `GET/PATCH/DELETE …/triggers/<id>`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from deplite.api.camel import to_camel
from deplite.api.fields import DocumentedPattern, StrictBooleanField, StrictCharField, StrictRegexField, rule
from deplite.links import absolute_url
from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet

from .. import notify_url, rules, services
from ..chat_links import ChatConnection, chat_connection, notify_connection
from ..environments import rules as env_rules
from ..extensions import linked_teams
from ..models import MAX_NOTIFY_URL, ChatProvider, ChatRunPolicy, NotifyOn, NotifyProvider, Trigger, TriggerType


def _chat_id():
    return StrictCharField(
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        validators=[DocumentedPattern(rules.CHAT_ID_RE)],
    )


class TriggerInput(serializers.Serializer):
    """Create (all required fields) or PATCH (validated merged with the stored trigger).
    Every field is a Trigger model field of the same name."""

    # Both default to the chat keyword: the docs' Slack trigger names neither.
    name = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    type = serializers.ChoiceField(choices=TriggerType.choices, default=TriggerType.WEBHOOK)
    workflow = StrictCharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        validators=[DocumentedPattern(rules.WORKFLOW_RE)],
    )
    agent_labels = serializers.ListField(
        child=StrictRegexField(rules.LABEL_RE), required=False, max_length=rules.MAX_LABELS, default=list
    )
    default_ref = StrictCharField(
        max_length=rules.MAX_REF,
        required=False,
        allow_blank=True,
        default="main",
        validators=[DocumentedPattern(rules.REF_RE)],
    )
    enabled = StrictBooleanField(required=False, default=True)
    repository_url = serializers.URLField(max_length=300, required=False, allow_blank=True, default="")
    chat_provider = serializers.ChoiceField(choices=ChatProvider.choices, required=False, allow_blank=True, default="")
    chat_team_id = _chat_id()
    chat_channel_id = _chat_id()
    chat_keyword = StrictCharField(
        max_length=rules.MAX_KEYWORD,
        required=False,
        allow_blank=True,
        default="",
        validators=[DocumentedPattern(rules.KEYWORD_INPUT_RE)],
    )
    # Who may run it from chat: linked members (default) or anyone in the channel's own workspace.
    chat_run_policy = serializers.ChoiceField(
        choices=ChatRunPolicy.choices, required=False, default=ChatRunPolicy.MEMBERS
    )
    notify_provider = serializers.ChoiceField(
        choices=NotifyProvider.choices, required=False, allow_blank=True, default=""
    )
    notify_team_id = _chat_id()
    notify_channel_id = _chat_id()
    notify_on = serializers.ChoiceField(choices=NotifyOn.choices, required=False, default=NotifyOn.ALWAYS)
    # notifyProvider "webhook": where the signed JSON result is POSTed (public https unless the server
    # allows private URLs). The other target's fields are cleared: a trigger has one notify target.
    notify_url = StrictCharField(
        max_length=MAX_NOTIFY_URL,
        required=False,
        allow_blank=True,
        default="",
        help_text="With notifyProvider webhook: the public https:// URL each result is POSTed to, signed "
        "X-Deplite-Signature with the secret the answer shows once (notifySecret).",
    )
    # Where its jobs' output files go: a storage binding of the same org (checked by the service), or null.
    output_binding_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    # Where its jobs deploy: an environment of the same org, by name (checked by the service), or
    # null/blank for none. Absent from a PATCH: left as it is.
    environment = StrictCharField(
        source="environment_name",
        max_length=50,
        required=False,
        allow_blank=True,
        allow_null=True,
        validators=[DocumentedPattern(env_rules.NAME_RE)],
    )

    def validate_workflow(self, value: str) -> str:
        if not value:  # blank: the chat keyword, or "required" (see validate)
            return ""
        try:
            return rules.clean_workflow(value)
        except rules.RuleViolation as exc:
            raise serializers.ValidationError(exc.message) from None

    validate_agent_labels = rule(rules.clean_labels)
    validate_chat_team_id = rule(rules.clean_chat_id)
    validate_chat_channel_id = rule(rules.clean_chat_id)
    validate_chat_keyword = rule(rules.clean_keyword)
    validate_notify_team_id = rule(rules.clean_chat_id)
    validate_notify_channel_id = rule(rules.clean_chat_id)

    def validate_default_ref(self, value: str) -> str:
        try:
            return rules.clean_default_ref(value)
        except rules.RuleViolation as exc:
            raise serializers.ValidationError(exc.message) from None

    def validate(self, attrs):
        kind = attrs["type"]
        errors: dict[str, list[str]] = {}
        if kind in (TriggerType.SLACK, TriggerType.DISCORD):
            attrs["chat_provider"] = attrs.get("chat_provider") or kind
            if attrs["chat_provider"] != kind:
                errors["chat_provider"] = [f"A {kind} trigger takes chatProvider {kind}."]
            for field in ("chat_team_id", "chat_channel_id", "chat_keyword"):
                if not attrs.get(field):
                    errors[field] = [f"A {kind} trigger needs {to_camel(field)}."]
        elif any(attrs.get(f) for f in ("chat_provider", "chat_team_id", "chat_channel_id", "chat_keyword")):
            errors["chat_provider"] = ["Only slack and discord triggers take chat fields."]
        keyword = attrs.get("chat_keyword") if not errors.get("chat_keyword") else ""
        for field in ("name", "workflow"):
            if not attrs.get(field):
                if keyword and (field == "name" or rules.WORKFLOW_RE.match(keyword)):
                    attrs[field] = keyword
                else:
                    given = field in getattr(self, "initial_data", {})
                    errors[field] = ["This field may not be blank." if given else "This field is required."]
        errors.update(_notify_target_errors(attrs))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _notify_target_errors(attrs: dict) -> dict[str, list[str]]:
    """A chat channel (team + channel ids) or a webhook URL, per notifyProvider; clears the other kind's fields."""
    provider = attrs.get("notify_provider")
    if provider == NotifyProvider.WEBHOOK:
        attrs["notify_team_id"] = attrs["notify_channel_id"] = ""
        if not attrs.get("notify_url"):
            return {"notify_url": ["Needed when notifyProvider is webhook."]}
        try:
            attrs["notify_url"] = notify_url.validate_notify_url(attrs["notify_url"])
        except notify_url.UrlNotAllowed as exc:
            return {"notify_url": [f"Not allowed: {exc}"]}
        return {}
    if not provider and attrs.get("notify_url"):
        return {"notify_provider": ["Set notifyProvider to webhook to send results to notifyUrl."]}
    attrs["notify_url"] = ""
    if provider:
        return {
            f: ["Needed when notifyProvider is set."]
            for f in ("notify_team_id", "notify_channel_id")
            if not attrs.get(f)
        }
    if attrs.get("notify_team_id") or attrs.get("notify_channel_id"):
        return {"notify_provider": ["Set notifyProvider to send notifications to this channel."]}
    return {}


# The trigger fields a client (or the trigger form) sets, by their model names. `environment` is
# not one: the wire names it by the environment's name, the row holds the FK.
TRIGGER_FIELDS = tuple(name for name in TriggerInput().fields if name != "environment")


class TriggerOutput(serializers.ModelSerializer):
    agent_labels = serializers.ListField(child=StrictCharField())
    output_binding_id = serializers.UUIDField(allow_null=True, read_only=True)
    environment = serializers.SerializerMethodField(help_text="The environment's name, or null.")
    run_url = serializers.SerializerMethodField()
    chat_connected = serializers.SerializerMethodField()
    chat_connected_reason = serializers.SerializerMethodField()
    notify_connected = serializers.SerializerMethodField()
    notify_connected_reason = serializers.SerializerMethodField()
    notify_secret = serializers.SerializerMethodField()
    notify_secret_hint = serializers.SerializerMethodField()

    class Meta:
        model = Trigger
        fields = [
            "id",
            *TRIGGER_FIELDS,
            "environment",
            "run_url",
            "chat_connected",
            "chat_connected_reason",
            "notify_connected",
            "notify_connected_reason",
            "notify_secret",
            "notify_secret_hint",
            "notify_disabled_at",
            "notify_disabled_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["notify_disabled_at", "notify_disabled_reason"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_notify_secret(self, obj) -> str | None:
        """The webhook signing secret, in the answer that generated it (create, the update that made the
        target a webhook, rotate-notify-secret) and never again: null in every other answer."""
        return self.context.get("notify_secret") if isinstance(self.context, dict) else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_notify_secret_hint(self, obj) -> str | None:
        """The secret masked (its prefix and last four characters), to tell which one a receiver holds; null without one."""
        secret = obj.notify_secret
        return f"{secret[:6]}…{secret[-4:]}" if secret else None

    def get_environment(self, obj) -> str | None:
        # Lists join it (TriggerViewSet.safely_get_queryset).
        return obj.environment.name if obj.environment_id else None

    def get_run_url(self, obj) -> str:
        return absolute_url("trigger-run", trigger_id=obj.id)

    def _linked(self, obj) -> dict[tuple[str, str], str]:
        # One lookup per org per response: a list shares its serializer context, and so do both fields.
        cache = self.context.setdefault("_linked_teams", {}) if isinstance(self.context, dict) else {}
        if obj.org_id not in cache:
            cache[obj.org_id] = linked_teams(obj.org_id)
        return cache[obj.org_id]

    def _chat_connection(self, obj) -> ChatConnection:
        return chat_connection(obj, self._linked(obj))

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_chat_connected(self, obj) -> bool | None:
        """Null for a webhook trigger; false when the chat team is not linked to this org."""
        return self._chat_connection(obj).connected

    def get_chat_connected_reason(self, obj) -> str:
        return self._chat_connection(obj).reason

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_notify_connected(self, obj) -> bool | None:
        """Null without a notify target; false when the notify team is not linked to this org
        (the trigger is saved, but its notifications fail `not_connected` until it is linked)."""
        return notify_connection(obj, self._linked(obj)).connected

    def get_notify_connected_reason(self, obj) -> str:
        return notify_connection(obj, self._linked(obj)).reason


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
        "rotate_notify_secret": Perm.TRIGGERS_MANAGE,
    }
    filterset_fields = ["type", "enabled"]

    def safely_get_queryset(self, queryset):
        return queryset.select_related("environment")

    @extend_schema(request=TriggerInput, responses={201: TriggerOutput})
    def create(self, request, org_id):
        data = TriggerInput(data=request.data)
        data.is_valid(raise_exception=True)
        trigger = services.trigger_create(org=self.org, actor=self.actor, **data.validated_data)
        return Response(_output(trigger, new_secret=trigger.notify_secret), status=status.HTTP_201_CREATED)

    @extend_schema(request=TriggerInput, responses={200: TriggerOutput})
    def partial_update(self, request, org_id, pk):
        trigger = self.get_object()
        current = {field: getattr(trigger, field) for field in TRIGGER_FIELDS}
        data = TriggerInput(data={**current, **request.data})  # no `environment` given: kept
        data.is_valid(raise_exception=True)
        had_secret = bool(trigger.notify_secret)
        trigger = services.trigger_update(trigger=trigger, actor=self.actor, **data.validated_data)
        return Response(_output(trigger, new_secret=None if had_secret else trigger.notify_secret))

    @extend_schema(request=None, responses={200: TriggerOutput})
    @action(detail=True, methods=["post"], url_path="rotate-notify-secret")
    def rotate_notify_secret(self, request, org_id, pk):
        """A new webhook signing secret, shown in this answer only; the old one stops at once."""
        trigger, secret = services.trigger_notify_secret_rotate(trigger=self.get_object(), actor=self.actor)
        return Response(_output(trigger, new_secret=secret))

    def destroy(self, request, org_id, pk):
        services.trigger_delete(trigger=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _output(trigger: Trigger, *, new_secret: str | None) -> dict:
    return TriggerOutput(trigger, context={"notify_secret": new_secret or None}).data
