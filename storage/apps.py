from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "storage"

    def ready(self):
        from orgs import extensions as orgs_extensions
        from orgs.models import TokenScope

        from .models import StorageBinding
        from .overview import storage_overview

        # A storage token lists bindings (orgs knows no storage model).
        orgs_extensions.register_token_scope(TokenScope.STORAGE, StorageBinding, field="bindingIds")
        orgs_extensions.register_overview(storage_overview)
