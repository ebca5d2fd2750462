from django.contrib import admin

from .models import Agent


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    """The secret is never shown here: it is shown once by the API, and rotated there."""

    list_display = ["name", "org", "labels", "hostname", "version", "last_seen_at", "revoked_at"]
    search_fields = ["name", "hostname", "org__slug", "id"]
    exclude = ["secret"]
    readonly_fields = [
        "org",
        "hostname",
        "version",
        "workflows",
        "last_seen_at",
        "revoked_at",
        "created_by",
        "created_at",
    ]

    def has_add_permission(self, request):
        return False
