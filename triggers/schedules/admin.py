"""Operators' view of schedules: read-only (changes go through the services, with their audit);
operators can disable a schedule that misbehaves."""

from django.contrib import admin

from orgs.admin_console import OperatorConsole, age_filter, org_filter, service_action

from . import services
from .models import Schedule, ScheduleFire


class ScheduleFireInline(admin.TabularInline):
    model = ScheduleFire
    extra = 0
    fields = ["fire_at", "job", "error", "created_at"]
    readonly_fields = fields
    can_delete = False
    ordering = ["-fire_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Schedule)
class ScheduleAdmin(OperatorConsole, admin.ModelAdmin):
    list_display = ["cron", "timezone", "trigger", "org", "enabled", "next_fire_at", "last_fire_at", "actor_label"]
    list_filter = [org_filter(), "enabled", "catch_up", age_filter()]
    list_select_related = ["org", "trigger"]
    search_fields = ["cron", "trigger__name", "org__slug", "id"]
    inlines = [ScheduleFireInline]
    actions = [
        service_action(
            "disable",
            "Disable selected schedules",
            lambda schedule, actor: services.schedule_update(schedule=schedule, actor=actor, enabled=False),
        )
    ]
