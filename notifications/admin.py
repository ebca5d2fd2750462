from django.contrib import admin

from orgs.admin_console import OperatorConsole, age_filter, org_filter, service_action

from . import services
from .models import NotificationDelivery


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(OperatorConsole, admin.ModelAdmin):
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
            lambda delivery, actor: services.delivery_retry(delivery=delivery, actor=actor),
        )
    ]
