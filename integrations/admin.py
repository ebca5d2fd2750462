"""Admin: operators see installations and chat commands; bot tokens, response URLs and
interaction tokens are never rendered (not even as form fields)."""

from django.contrib import admin

from .models import ChatCommand, Installation


@admin.register(Installation)
class InstallationAdmin(admin.ModelAdmin):
    list_display = ["provider", "name", "external_id", "org", "installed_by", "created_at"]
    list_filter = ["provider"]
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
    list_display = ["kind", "org", "team_id", "channel_id", "user_name", "outcome", "reply_state", "created_at"]
    list_filter = ["provider", "kind", "outcome", "reply_state"]
    search_fields = ["external_id", "team_id", "channel_id", "user_id", "org__slug"]
    exclude = ["response_url", "interaction_token"]
    readonly_fields = [f.name for f in ChatCommand._meta.fields if f.name not in ("response_url", "interaction_token")]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("org", "job").defer("response_url", "interaction_token")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
