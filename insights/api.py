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
from deplite.api.errors import NotFound
from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet
from triggers.models import Environment, Trigger

from . import selectors
from .selectors.deploys import EnvironmentDeploys
from .stats import change
from .windows import WINDOWS, Window, window_parse


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
    permission_map = {"summary": Perm.AGENTS_READ}

    @extend_schema(responses={200: AgentsInsightsOutput}, tags=["insights"])
    def summary(self, request, org_id):
        return Response(AgentsInsightsOutput(selectors.agents_insights(org=self.org, now=timezone.now())).data)


WINDOW_PARAMETER = OpenApiParameter(
    "window",
    str,
    OpenApiParameter.QUERY,
    required=False,
    enum=["7d", "30d", "90d"],
    description="Default 30d. A window ends with the current UTC hour (`end`: the next whole hour).",
)


# --- environments ----------------------------------------------------------------------------------


class DeploymentFrequencyOutput(serializers.Serializer):
    deploys = serializers.IntegerField(help_text="Succeeded deploys in the window.")
    per_day = serializers.FloatField()
    previous_deploys = serializers.IntegerField(help_text="In the window before.")
    change = serializers.FloatField(
        allow_null=True, help_text="Against the window before, as a fraction (+0.25: 25% more)."
    )


class ChangeFailureRateOutput(serializers.Serializer):
    ran = serializers.IntegerField(help_text="Deploys that ran (succeeded or failed).")
    failures = serializers.IntegerField(help_text="Of those: failed, or rolled back within a day.")
    rate = serializers.FloatField(allow_null=True)
    previous_rate = serializers.FloatField(allow_null=True)
    change = serializers.FloatField(allow_null=True)


class TimeToRestoreOutput(serializers.Serializer):
    incidents = serializers.IntegerField(help_text="Bad deploys after a good one, begun in the window.")
    restored = serializers.IntegerField()
    mean_seconds = serializers.FloatField(allow_null=True, help_text="From the bad deploy to the next good one.")
    previous_mean_seconds = serializers.FloatField(allow_null=True)
    change = serializers.FloatField(allow_null=True)
    open_since = serializers.DateTimeField(allow_null=True, help_text="An incident not restored yet began then.")


class LeadTimeOutput(serializers.Serializer):
    mean_seconds = serializers.FloatField(allow_null=True, help_text="Run request to success (mean).")
    approval_wait_seconds = serializers.FloatField(
        allow_null=True, help_text="Request to approved (0 without approval)."
    )
    queue_wait_seconds = serializers.FloatField(allow_null=True, help_text="Then to the claim by an agent.")
    running_seconds = serializers.FloatField(allow_null=True, help_text="Then to the finish.")
    from_commit_seconds = serializers.FloatField(
        allow_null=True, help_text="Commit to success, over runs with commitTime."
    )
    with_commit_time = serializers.IntegerField()
    previous_mean_seconds = serializers.FloatField(allow_null=True)
    change = serializers.FloatField(allow_null=True)


class BucketOutput(serializers.Serializer):
    start = serializers.DateTimeField()
    deploys = serializers.IntegerField(help_text="Succeeded.")
    ran = serializers.IntegerField()
    failures = serializers.IntegerField()
    change_failure_rate = serializers.FloatField(allow_null=True)
    restore_mean_seconds = serializers.FloatField(allow_null=True, help_text="Of the incidents begun in the bucket.")
    lead_mean_seconds = serializers.FloatField(allow_null=True)


class EnvironmentInsightsOutput(serializers.Serializer):
    name = serializers.CharField()
    deployment_frequency = DeploymentFrequencyOutput()
    change_failure_rate = ChangeFailureRateOutput()
    time_to_restore = TimeToRestoreOutput()
    lead_time = LeadTimeOutput()
    buckets = BucketOutput(many=True)


class InsightsOutput(serializers.Serializer):
    window = serializers.ChoiceField(choices=list(WINDOWS))
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    environments = EnvironmentInsightsOutput(many=True)


def environment_payload(name: str, deploys: EnvironmentDeploys, window: Window) -> dict:
    cur, prev = deploys.current, deploys.previous
    return {
        "name": name,
        "deployment_frequency": {
            "deploys": cur.succeeded,
            "per_day": cur.succeeded / window.days,
            "previous_deploys": prev.succeeded,
            "change": change(cur.succeeded, prev.succeeded),
        },
        "change_failure_rate": {
            "ran": cur.ran,
            "failures": cur.failures,
            "rate": cur.change_failure_rate,
            "previous_rate": prev.change_failure_rate,
            "change": change(cur.change_failure_rate, prev.change_failure_rate),
        },
        "time_to_restore": {
            "incidents": cur.incidents,
            "restored": cur.restored,
            "mean_seconds": cur.restore_mean_seconds,
            "previous_mean_seconds": prev.restore_mean_seconds,
            "change": change(cur.restore_mean_seconds, prev.restore_mean_seconds),
            "open_since": deploys.open_since,
        },
        "lead_time": {
            "mean_seconds": cur.lead_mean_seconds,
            "approval_wait_seconds": cur.approval_mean_seconds,
            "queue_wait_seconds": cur.queue_mean_seconds,
            "running_seconds": cur.running_mean_seconds,
            "from_commit_seconds": cur.commit_lead_mean_seconds,
            "with_commit_time": cur.commit_count,
            "previous_mean_seconds": prev.lead_mean_seconds,
            "change": change(cur.lead_mean_seconds, prev.lead_mean_seconds),
        },
        "buckets": [
            {
                "start": start,
                "deploys": bucket.succeeded,
                "ran": bucket.ran,
                "failures": bucket.failures,
                "change_failure_rate": bucket.change_failure_rate,
                "restore_mean_seconds": bucket.restore_mean_seconds,
                "lead_mean_seconds": bucket.lead_mean_seconds,
            }
            for start, bucket in zip(window.bucket_starts(), deploys.buckets, strict=True)
        ],
    }


class InsightsViewSet(OrgScopedViewSet):
    """`GET …/insights?environment=<name>&window=7d|30d|90d`: the DORA measures of one environment, or of
    every environment of the org without `environment`."""

    queryset = Environment.objects.all()
    # Reading the org's environments, as their configuration is read: a trigger or storage token,
    # which names no environment, is refused (403) rather than shown an empty org.
    permission_map = {"summary": Perm.TRIGGERS_READ}

    @extend_schema(
        responses={200: InsightsOutput},
        tags=["insights"],
        parameters=[
            OpenApiParameter(
                "environment",
                str,
                OpenApiParameter.QUERY,
                required=False,
                description="An environment's name; absent: every environment.",
            ),
            WINDOW_PARAMETER,
        ],
    )
    def summary(self, request, org_id):
        window = window_parse(request.query_params.get("window"), now=timezone.now())
        environments = self.get_queryset().order_by("name")
        name = request.query_params.get("environment")
        if name is not None:
            environments = environments.filter(name=name)
        environments = list(environments.values_list("pk", "name"))
        if name is not None and not environments:
            raise NotFound("Environment not found.")
        deploys = selectors.deploys_by_environment(
            org_id=self.org.pk, environment_ids=[pk for pk, _ in environments], window=window
        )
        body = {
            "window": window.name,
            "start": window.start,
            "end": window.end,
            "environments": [environment_payload(env_name, deploys[pk], window) for pk, env_name in environments],
        }
        return Response(InsightsOutput(body).data)
