"""Agent management for people: `GET/POST /api/orgs/<orgId>/agents`, `GET/DELETE …/agents/<id>`,
`POST …/agents/<id>/rotate-secret`. The secret is in the create and rotate answers only."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from deplite.api.fields import StrictCharField, StrictRegexField, rule
from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet
from triggers import rules as trigger_rules

from . import distribution, services, versions
from .models import Agent


class AgentOutput(serializers.ModelSerializer):
    status = StrictCharField()
    update_available = serializers.SerializerMethodField()
    update_command = serializers.SerializerMethodField()

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "labels",
            "status",
            "hostname",
            "version",
            "update_available",
            "update_command",
            "workflows",
            "last_seen_at",
            "revoked_at",
            "created_at",
        ]

    def get_update_available(self, obj) -> bool:
        """The agent reported a version older than the one this server hands out (`GET /agent/version`)."""
        return versions.update_available(obj.version)

    def get_update_command(self, obj) -> str | None:
        """When an update is available: the command that upgrades it in place, run on the agent's host."""
        return distribution.install_command(agent_id=obj.pk) if versions.update_available(obj.version) else None


class AgentWithSecretOutput(AgentOutput):
    secret = serializers.SerializerMethodField()

    class Meta(AgentOutput.Meta):
        fields = [*AgentOutput.Meta.fields, "secret"]

    def get_secret(self, obj) -> str:
        return self.context["secret"]


class AgentCreateInput(serializers.Serializer):
    name = StrictCharField(max_length=100)
    labels = serializers.ListField(
        child=StrictRegexField(trigger_rules.LABEL_RE),
        required=False,
        max_length=trigger_rules.MAX_LABELS,
        default=list,
    )

    validate_labels = rule(trigger_rules.clean_labels)


class AgentViewSet(OrgScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    queryset = Agent.objects.all()
    serializer_class = AgentOutput
    permission_map = {
        "list": Perm.AGENTS_READ,
        "retrieve": Perm.AGENTS_READ,
        "create": Perm.AGENTS_MANAGE,
        "destroy": Perm.AGENTS_MANAGE,
        "rotate_secret": Perm.AGENTS_MANAGE,
    }

    @extend_schema(request=AgentCreateInput, responses={201: AgentWithSecretOutput})
    def create(self, request, org_id):
        data = AgentCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        agent, secret = services.agent_create(org=self.org, actor=self.actor, **data.validated_data)
        return Response(AgentWithSecretOutput(agent, context={"secret": secret}).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, org_id, pk):
        services.agent_revoke(agent=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: AgentWithSecretOutput})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, org_id, pk):
        agent, secret = services.agent_rotate_secret(agent=self.get_object(), actor=self.actor)
        return Response(AgentWithSecretOutput(agent, context={"secret": secret}).data)
