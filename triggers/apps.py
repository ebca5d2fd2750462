from django.apps import AppConfig


class TriggersConfig(AppConfig):
    name = "triggers"

    def ready(self):
        from orgs import overview

        from .input_files import connect_storage_signals
        from .overview import triggers_overview

        connect_storage_signals()
        overview.register(triggers_overview)
