"""The insights over the API, the same numbers the pages show, for a team's own dashboard:
`GET /api/orgs/<orgId>/insights?environment=<name>&window=7d|30d|90d` (every environment without
`environment`), `GET …/triggers/<id>/insights` and `GET …/insights/agents`."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from agents.models import Agent
from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet
from triggers.models import Trigger

from . import selectors


class RunPointOutput(serializers.Serializer):
    job_id = serializers.UUIDField()
    short_id = serializers.CharField()
    status = serializers.CharField()
    finished_at = serializers.DateTimeField()
    duration_seconds = serializers.FloatField()


class StepTimeOutput(serializers.Serializer):
    name = serializers.CharField()
    runs = serializers.IntegerField()
    failures = serializers.IntegerField()
    mean_seconds = serializers.FloatField()
    share = serializers.FloatField(help_text="Of the time all steps took, 0–1.")


class TriggerInsightsOutput(serializers.Serializer):
    runs = RunPointOutput(many=True, help_text="The trigger's last 100 runs that succeeded or failed, oldest first.")
    success_rate = serializers.FloatField(allow_null=True, help_text="Of those runs, 0–1; null without runs.")
    p50_seconds = serializers.FloatField(allow_null=True)
    p95_seconds = serializers.FloatField(allow_null=True)
    steps = StepTimeOutput(many=True, help_text="Per step name, in workflow order; empty when steps are unknown.")


class AgentLoadOutput(serializers.Serializer):
    id = serializers.UUIDField(source="agent_id")
    name = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField()
    jobs = serializers.IntegerField(help_text="Jobs it held during the day.")
    busy_seconds = serializers.FloatField()
    busy_share = serializers.FloatField(help_text="Of the day, 0–1.")


class LabelLoadOutput(serializers.Serializer):
    label = serializers.CharField(allow_null=True, help_text="null: jobs that name no label (any agent).")
    agents = serializers.IntegerField()
    busy_share = serializers.FloatField(allow_null=True, help_text="Mean over the agents with the label; null without.")
    jobs = serializers.IntegerField(help_text="Jobs needing the label claimed during the day.")
    wait_p50_seconds = serializers.FloatField(allow_null=True)
    wait_p95_seconds = serializers.FloatField(allow_null=True)


class AgentsInsightsOutput(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    jobs = serializers.IntegerField(help_text="Jobs claimed during the day.")
    wait_p50_seconds = serializers.FloatField(allow_null=True, help_text="Queue wait: from claimable to claimed.")
    wait_p95_seconds = serializers.FloatField(allow_null=True)
    agents = AgentLoadOutput(many=True)
    labels = LabelLoadOutput(many=True)


class TriggerInsightsViewSet(OrgScopedViewSet):
    """`GET …/triggers/<id>/insights`."""

    queryset = Trigger.objects.all()
    permission_map = {"insights": Perm.JOBS_READ}

    @extend_schema(responses={200: TriggerInsightsOutput}, tags=["insights"])
    @action(detail=True, methods=["get"], url_path="insights")
    def insights(self, request, org_id, pk):
        trigger = self.get_object()
        return Response(TriggerInsightsOutput(selectors.trigger_insights(trigger=trigger)).data)


class AgentsInsightsViewSet(OrgScopedViewSet):
    """`GET …/insights/agents`: the last 24 hours."""

    queryset = Agent.objects.all()
    permission_map = {"list": Perm.AGENTS_READ}
    pagination_class = None

    @extend_schema(responses={200: AgentsInsightsOutput}, tags=["insights"], filters=False)
    def list(self, request, org_id):
        return Response(AgentsInsightsOutput(selectors.agents_insights(org=self.org, now=timezone.now())).data)


WINDOW_PARAMETER = OpenApiParameter(
    "window", str, OpenApiParameter.QUERY, required=False, enum=["7d", "30d", "90d"], description="Default 30d."
)
