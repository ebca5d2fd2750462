from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "storage"

    def ready(self):
        from orgs import overview

        from .overview import storage_overview

        overview.register(storage_overview)
