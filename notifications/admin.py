from django.contrib import admin

from .models import NotificationDelivery


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(admin.ModelAdmin):
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
    list_filter = ("status", "provider", "kind", "last_error", "org")
    search_fields = ("channel", "job__short_id", "job__trigger_name", "provider_message_id")
    date_hierarchy = "created_at"
    list_select_related = ("org", "job")
    # The interaction token is a credential: never shown.
    exclude = ("interaction_token",)
    readonly_fields = (
        "org",
        "job",
        "installation",
        "lease_token",
        "lease_until",
        "attempt_started_at",
        "uncertain_since",
        "created_at",
        "updated_at",
    )
    raw_id_fields = ("job",)
