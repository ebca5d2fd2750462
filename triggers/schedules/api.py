"""`GET/POST /api/orgs/<orgId>/triggers/<triggerId>/schedules`, `GET/PATCH/DELETE …/schedules/<id>`.

Scoped and permitted as the trigger itself (orgs.scoping): reading needs triggers.read, changing
triggers.manage; a trigger another org owns, or a trigger token does not list, is a 404.
"""

from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from deplite.api.errors import NotFound
from deplite.api.fields import StrictBooleanField, StrictCharField, rule
from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet

from .. import rules
from ..api.fields import ParamsField, RefField
from ..models import Trigger
from . import cron as cron_rules
from . import services
from .models import CatchUp, Schedule


class ScheduleInput(serializers.Serializer):
    """Create (cron required) or PATCH (validated merged with the stored schedule)."""

    cron = StrictCharField(
        max_length=200,
        help_text="Five fields: minute hour day-of-month month day-of-week (as crontab), e.g. `0 9 * * 1-5`.",
    )
    timezone = StrictCharField(
        max_length=64, required=False, default="UTC", help_text="An IANA timezone name, e.g. `Europe/Berlin`."
    )
    ref = RefField(rules.clean_ref, required=False, allow_null=True, default=None)
    params = ParamsField(rules.clean_params, required=False, allow_null=True, default=None)
    enabled = StrictBooleanField(required=False, default=True)
    catch_up = serializers.ChoiceField(
        choices=CatchUp.choices,
        required=False,
        default=CatchUp.LATEST,
        help_text="Fires missed by more than 10 minutes: `latest` runs the latest of them once, `none` skips them.",
    )

    validate_cron = rule(cron_rules.clean_cron)
    validate_timezone = rule(cron_rules.clean_timezone)

    def service_kwargs(self) -> dict:
        data = self.validated_data
        return {
            "cron": data["cron"],
            "timezone_name": data["timezone"],
            "ref": data.get("ref") or "",
            "params": data.get("params") or {},
            "enabled": data["enabled"],
            "catch_up": data["catch_up"],
        }


class ScheduleJobOutput(serializers.Serializer):
    id = serializers.UUIDField()
    short_id = StrictCharField()
    status = StrictCharField()
    url = StrictCharField()


class ScheduleOutput(serializers.ModelSerializer):
    trigger_id = serializers.UUIDField()
    params = serializers.DictField(child=StrictCharField())
    description = serializers.SerializerMethodField()
    next_fire_times = serializers.SerializerMethodField()
    last_job = ScheduleJobOutput(allow_null=True)
    created_by = StrictCharField(source="actor_label")

    class Meta:
        model = Schedule
        fields = [
            "id",
            "trigger_id",
            "cron",
            "timezone",
            "ref",
            "params",
            "enabled",
            "catch_up",
            "description",
            "next_fire_at",
            "next_fire_times",
            "last_fire_at",
            "last_job",
            "last_error",
            "created_by",
            "created_at",
            "updated_at",
        ]

    def get_description(self, obj) -> str:
        """A plain reading of the expression and its timezone ("At 09:00 on Monday through Friday, Europe/Berlin")."""
        return services.schedule_description(obj)

    @extend_schema_field(serializers.ListField(child=serializers.DateTimeField()))
    def get_next_fire_times(self, obj) -> list[str]:
        """The next five fire times, ISO 8601 in UTC (none while disabled)."""
        as_iso = serializers.DateTimeField().to_representation
        return [as_iso(moment) for moment in services.schedule_next_fire_times(obj)]


_TRIGGER_ID = OpenApiParameter("trigger_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


@extend_schema_view(
    list=extend_schema(parameters=[_TRIGGER_ID]),
    retrieve=extend_schema(parameters=[_TRIGGER_ID]),
    destroy=extend_schema(parameters=[_TRIGGER_ID]),
)
class ScheduleViewSet(OrgScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """A trigger's schedules: cron, timezone, ref, params, enabled, catchUp; reads show the next fire times."""

    queryset = Schedule.objects.select_related("org", "last_job__org")
    serializer_class = ScheduleOutput
    permission_map = {
        "list": Perm.TRIGGERS_READ,
        "retrieve": Perm.TRIGGERS_READ,
        "create": Perm.TRIGGERS_MANAGE,
        "partial_update": Perm.TRIGGERS_MANAGE,
        "destroy": Perm.TRIGGERS_MANAGE,
    }

    def trigger(self) -> Trigger:
        """The trigger named in the URL, if this caller sees it (else 404, as the trigger's own URL)."""
        if not hasattr(self, "_trigger"):
            try:
                pk = uuid.UUID(str(self.kwargs.get("trigger_id")))
            except ValueError:
                raise NotFound("Trigger not found.") from None
            found = self.org_objects(Trigger).select_related("org").filter(pk=pk).first()
            if found is None:
                raise NotFound("Trigger not found.")
            self._trigger = found
        return self._trigger

    def safely_get_queryset(self, queryset):
        return queryset.filter(trigger=self.trigger())

    @extend_schema(parameters=[_TRIGGER_ID], request=ScheduleInput, responses={201: ScheduleOutput})
    def create(self, request, org_id, trigger_id):
        trigger = self.trigger()
        data = ScheduleInput(data=request.data)
        data.is_valid(raise_exception=True)
        schedule = services.schedule_create(trigger=trigger, actor=self.actor, **data.service_kwargs())
        return Response(ScheduleOutput(schedule).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[_TRIGGER_ID], request=ScheduleInput, responses={200: ScheduleOutput})
    def partial_update(self, request, org_id, trigger_id, pk):
        schedule = self.get_object()
        current = {
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "ref": schedule.ref or None,
            "params": schedule.params,
            "enabled": schedule.enabled,
            "catch_up": schedule.catch_up,
        }
        data = ScheduleInput(data={**current, **request.data})
        data.is_valid(raise_exception=True)
        schedule = services.schedule_update(schedule=schedule, actor=self.actor, **data.service_kwargs())
        return Response(ScheduleOutput(schedule).data)

    def destroy(self, request, org_id, trigger_id, pk):
        services.schedule_delete(schedule=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
