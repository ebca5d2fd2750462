from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self):
        from triggers import extensions as triggers_extensions

        from .services import linked_teams

        # `triggers` asks whether a chat trigger's team is linked without importing us.
        triggers_extensions.register_linked_teams_lookup(linked_teams)
