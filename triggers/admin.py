from django.contrib import admin

from orgs.admin_console import OperatorConsole, age_filter, org_filter, service_action

from . import services
from .models import Environment, IdempotencyKey, Job, JobApproval, JobStep, Trigger


@admin.register(Trigger)
class TriggerAdmin(OperatorConsole, admin.ModelAdmin):
    """Read-only: triggers change through their service (validation, audit); operators can disable one."""

    list_display = ["name", "org", "type", "workflow", "enabled", "notify_on", "created_at"]
    list_filter = [org_filter(), "enabled", "type", age_filter()]
    list_select_related = ["org"]
    search_fields = ["name", "workflow", "org__slug", "id"]
    # The webhook secret is never rendered, not even read-only (shown once to the person who made it).
    exclude = ["notify_secret"]
    actions = [
        service_action(
            "disable",
            "Disable selected triggers",
            lambda trigger, actor: services.trigger_update(trigger=trigger, actor=actor, enabled=False),
        )
    ]


class JobStepInline(admin.TabularInline):
    model = JobStep
    extra = 0
    fields = ["index", "name", "status", "exit_code", "started_at", "finished_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(Job)
class JobAdmin(OperatorConsole, admin.ModelAdmin):
    """Jobs change state through the agent protocol and services only: read-only here; cancel
    goes through job_cancel (a running job's agent is told on its next report)."""

    list_display = ["short_id", "trigger_name", "org", "status", "ref", "agent_name", "source", "created_at"]
    list_filter = [org_filter(), "status", "source", age_filter()]
    list_select_related = ["org"]
    search_fields = ["short_id", "id", "trigger_name", "org__slug", "ref"]
    inlines = [JobStepInline]
    actions = [
        service_action("cancel", "Cancel selected jobs", lambda job, actor: services.job_cancel(job=job, actor=actor))
    ]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    list_display = ["key", "trigger", "org", "response_status", "created_at"]
    search_fields = ["key", "org__slug"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# Schedules keep their admin in their own package (triggers/schedules/admin.py); registered on import.
from .schedules import admin as schedules_admin  # noqa: E402, F401


@admin.register(Environment)
class EnvironmentAdmin(OperatorConsole, admin.ModelAdmin):
    """Rules and locks change through the environments' services (audited, under the environment's lock):
    read-only here, so an operator sees what gates a deploy without bypassing the gate."""

    list_display = ["name", "org", "concurrency", "queue", "required_approvals", "locked_by_label", "lock_expires_at"]
    list_filter = [org_filter(), "concurrency", "queue"]
    list_select_related = ["org"]
    search_fields = ["name", "org__slug", "locked_by_label"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(JobApproval)
class JobApprovalAdmin(admin.ModelAdmin):
    list_display = ["job", "org", "user_label", "decision", "created_at"]
    list_filter = ["decision"]
    list_select_related = ["org", "job"]
    search_fields = ["job__short_id", "user_label", "org__slug"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
