"""Admin: read-mostly views for operators. The binding secret is never rendered, not even
as a form field: bindings are changed through the API, whose service re-checks the
endpoint and demands the secret again when the key is pointed elsewhere."""

from django.contrib import admin

from orgs.admin_console import age_filter, org_filter

from .models import StorageBinding, StoredFile


@admin.register(StorageBinding)
class StorageBindingAdmin(admin.ModelAdmin):
    list_display = ["name", "org", "endpoint", "bucket", "region", "path_style", "created_at"]
    list_filter = [org_filter(), "path_style", age_filter()]
    search_fields = ["name", "bucket", "endpoint", "org__slug"]
    exclude = ["secret_key"]
    readonly_fields = [
        "org",
        "name",
        "endpoint",
        "region",
        "bucket",
        "access_key",
        "secret_key_masked",
        "path_style",
        "prefix",
        "created_by",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="Secret key")
    def secret_key_masked(self, obj: StorageBinding) -> str:
        return "•••••••• (set)" if obj.pk else ""

    def get_queryset(self, request):
        # Loading the secret would decrypt it for nothing; the admin never shows it.
        return super().get_queryset(request).select_related("org").defer("secret_key")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(StoredFile)
class StoredFileAdmin(admin.ModelAdmin):
    list_display = ["file_name", "org", "binding", "status", "size", "created_at", "verified_at"]
    list_filter = [org_filter(), "status", age_filter()]
    search_fields = ["id", "file_name", "object_key", "org__slug"]
    list_select_related = ["org", "binding"]
    readonly_fields = [f.name for f in StoredFile._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("binding__secret_key")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
