from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError

from . import ratelimit, services
from .actors import Actor, ActorKind
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


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """The hash is never shown; operators see the prefix and can revoke."""

    list_display = ["name", "prefix", "org", "scope_type", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["scope_type"]
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
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # tokens are created through the API, where the plaintext is shown once

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        actor = Actor(
            kind=ActorKind.USER,
            id=str(request.user.pk),
            label=f"admin:{request.user.email}",
            user=request.user,
            ip=ratelimit.client_ip(request),
        )
        for token in queryset.select_related("org"):
            services.token_revoke(token=token, actor=actor)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "org", "actor_kind", "actor_label", "action", "target_type", "target_id", "ip"]
    list_filter = ["actor_kind", "action"]
    search_fields = ["org__slug", "actor_label", "action", "target_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
