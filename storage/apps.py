from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "storage"

    def ready(self):
        from orgs import overview, token_scopes
        from orgs.models import TokenScope

        from .models import StorageBinding
        from .overview import storage_overview

        # A storage token lists bindings (orgs knows no storage model).
        token_scopes.register(TokenScope.STORAGE, StorageBinding, field="bindingIds")
        overview.register(storage_overview)
