from django.contrib import admin

from .models import IdempotencyKey, Job, JobStep, Trigger


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    list_display = ["name", "org", "type", "workflow", "enabled", "notify_on", "created_at"]
    list_filter = ["type", "enabled"]
    search_fields = ["name", "workflow", "org__slug", "id"]


class JobStepInline(admin.TabularInline):
    model = JobStep
    extra = 0
    fields = ["index", "name", "status", "exit_code", "started_at", "finished_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Jobs change state through the agent protocol and services only: read-only here."""

    list_display = ["short_id", "trigger_name", "org", "status", "ref", "agent_name", "source", "created_at"]
    list_filter = ["status", "source"]
    search_fields = ["short_id", "id", "trigger_name", "org__slug", "ref"]
    inlines = [JobStepInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    list_display = ["key", "trigger", "org", "response_status", "created_at"]
    search_fields = ["key", "org__slug"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
