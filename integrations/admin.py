"""Admin: operators see installations, chat commands and the outbox; bot tokens, response URLs
and interaction tokens are never rendered (not even as form fields)."""

from django.contrib import admin

from orgs.admin_console import OperatorConsole, age_filter, org_filter, service_action

from . import outbox, services
from .models import ChatCommand, Installation, OutboxMessage


@admin.register(Installation)
class InstallationAdmin(OperatorConsole, admin.ModelAdmin):
    list_display = ["provider", "name", "external_id", "org", "installed_by", "created_at"]
    list_filter = [org_filter(), "provider", age_filter()]
    # Through the same service as the API's disconnect (audit entry with the operator as actor).
    actions = [
        service_action(
            "remove",
            "Remove selected installations",
            lambda installation, actor: services.installation_remove(installation=installation, actor=actor),
        )
    ]
    search_fields = ["name", "external_id", "org__slug"]
    exclude = ["bot_token"]
    readonly_fields = [
        "org",
        "provider",
        "external_id",
        "name",
        "bot_user_id",
        "scopes",
        "bot_token_masked",
        "installed_by",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="Bot token")
    def bot_token_masked(self, obj: Installation) -> str:
        return "•••••••• (set)" if obj.pk and obj.bot_token else "—"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("org", "installed_by")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ChatCommand)
class ChatCommandAdmin(admin.ModelAdmin):
    list_display = ["kind", "org", "team_id", "channel_id", "user_name", "outcome", "created_at"]
    list_filter = ["provider", "kind", "outcome"]
    search_fields = ["external_id", "team_id", "channel_id", "user_id", "org__slug"]
    exclude = ["response_url", "interaction_token"]
    readonly_fields = [f.name for f in ChatCommand._meta.fields if f.name not in ("response_url", "interaction_token")]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("org", "job").defer("response_url", "interaction_token")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(OperatorConsole, admin.ModelAdmin):
    list_display = (
        "created_at",
        "org",
        "job",
        "kind",
        "provider",
        "channel",
        "status",
        "attempts",
        "last_error",
        "sent_at",
    )
    list_filter = (org_filter(), "status", "provider", "kind", "last_error", age_filter())
    search_fields = ("channel", "job__short_id", "job__trigger_name", "provider_message_id")
    date_hierarchy = "created_at"
    list_select_related = ("org", "job")
    # The interaction token is a credential: never shown.
    exclude = ("interaction_token",)
    readonly_fields = (
        "org",
        "job",
        "command",
        "installation",
        "lease_token",
        "lease_until",
        "attempt_started_at",
        "uncertain_since",
        "created_at",
        "updated_at",
    )
    raw_id_fields = ("job",)
    actions = [
        service_action(
            "retry",
            "Retry selected failed deliveries",
            lambda message, actor: outbox.message_retry(message=message, actor=actor),
        )
    ]
