from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django.utils import timezone

from . import ratelimit, services
from .admin_console import OperatorConsole, age_filter, org_filter, service_action
from .models import ApiToken, AuditEvent, Invitation, Membership, Organization, User


class RateLimitedAdminLoginForm(AdminAuthenticationForm):
    """/admin/login/ under the same failed-login limit as the site and the API (the backend
    enforces it; this only says so instead of "wrong password")."""

    def clean(self):
        if self.request is not None and ratelimit.login_limited(self.request, self.data.get("username", "")):
            raise ValidationError("Too many failed logins. Try again in a minute.", code="rate_limited")
        return super().clean()


admin.site.login_form = RateLimitedAdminLoginForm


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "is_staff", "is_active", "date_joined"]
    search_fields = ["email"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "id", "created_at"]
    search_fields = ["name", "slug", "id"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "org", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "org__slug"]
    autocomplete_fields = ["user", "org"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "org", "role", "created_at", "accepted_at"]
    search_fields = ["email", "org__slug"]


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("revoked", "revoked"), ("expired", "expired")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(OperatorConsole, admin.ModelAdmin):
    """The hash is never shown; operators see the prefix and can revoke (through token_revoke)."""

    list_display = ["name", "prefix", "org", "scope_type", "expires_at", "last_used_at", "revoked_at", "created_at"]
    list_filter = [org_filter(), TokenStatusFilter, "scope_type", age_filter()]
    list_select_related = ["org"]
    search_fields = ["name", "prefix", "org__slug"]
    exclude = ["token_hash"]
    readonly_fields = [
        "org",
        "prefix",
        "scope_type",
        "binding_ids",
        "storage_permissions",
        "trigger_ids",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "created_by",
        "created_at",
    ]
    actions = [
        service_action(
            "revoke", "Revoke selected tokens", lambda token, actor: services.token_revoke(token=token, actor=actor)
        )
    ]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "org", "actor_kind", "actor_label", "action", "target_type", "target_id", "ip"]
    list_filter = [org_filter(), "actor_kind", "action", age_filter()]
    list_select_related = ["org"]
    search_fields = ["org__slug", "actor_label", "action", "target_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
