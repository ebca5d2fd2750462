from django.apps import AppConfig


class TriggersConfig(AppConfig):
    name = "triggers"

    def ready(self):
        from orgs import overview, token_scopes
        from orgs.models import TokenScope
        from storage.signals import file_status_changed

        from . import input_files
        from .models import Trigger
        from .overview import triggers_overview

        file_status_changed.connect(input_files.on_file_status_changed, dispatch_uid="triggers.input_files")
        # A trigger token lists triggers (orgs knows no trigger model).
        token_scopes.register(TokenScope.TRIGGER, Trigger, field="triggerIds")
        overview.register(triggers_overview)
