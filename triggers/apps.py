from django.apps import AppConfig


class TriggersConfig(AppConfig):
    name = "triggers"

    def ready(self):
        from storage.signals import file_status_changed

        from . import input_files

        file_status_changed.connect(input_files.on_file_status_changed, dispatch_uid="triggers.input_files")
