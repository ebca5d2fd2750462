from django.apps import AppConfig


class TriggersConfig(AppConfig):
    name = "triggers"

    def ready(self):
        from .input_files import connect_storage_signals

        connect_storage_signals()
