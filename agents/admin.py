from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.utils import timezone

from orgs.admin_console import OperatorConsole, age_filter, masked, org_filter, service_action

from . import services
from .models import Agent


class AgentStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("online", "online"), ("offline", "offline"), ("revoked", "revoked")]

    def queryset(self, request, queryset):
        recent = timezone.now() - timedelta(seconds=settings.DEPLITE_AGENT_OFFLINE_AFTER_SECONDS)
        if self.value() == "online":
            return queryset.filter(revoked_at__isnull=True, last_seen_at__gte=recent)
        if self.value() == "offline":
            return queryset.filter(revoked_at__isnull=True).exclude(last_seen_at__gte=recent)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(Agent)
class AgentAdmin(OperatorConsole, admin.ModelAdmin):
    """The secret is never shown here: it is shown once by the API, and rotated there.
    Revoking goes through agent_revoke (its running jobs fail, the audit log names the operator)."""

    list_display = ["name", "org", "labels", "hostname", "version", "last_seen_at", "revoked_at", "created_at"]
    list_filter = [org_filter(), AgentStatusFilter, age_filter()]
    list_select_related = ["org"]
    search_fields = ["name", "hostname", "org__slug", "id"]
    exclude = ["secret"]
    readonly_fields = [
        "org",
        "name",
        "labels",
        "secret_masked",
        "hostname",
        "version",
        "workflows",
        "last_seen_at",
        "revoked_at",
        "created_by",
        "created_at",
    ]
    actions = [
        service_action(
            "revoke", "Revoke selected agents", lambda agent, actor: services.agent_revoke(agent=agent, actor=actor)
        )
    ]

    @admin.display(description="Secret")
    def secret_masked(self, obj: Agent) -> str:
        return masked(obj.pk)

    def get_queryset(self, request):
        # Loading the secret would decrypt it for nothing; the admin never shows it.
        return super().get_queryset(request).defer("secret")
