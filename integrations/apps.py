from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self):
        # `triggers` asks whether a chat trigger's team is linked without importing us.
        from triggers.chat_links import register_linked_teams_lookup

        from .services import linked_teams

        register_linked_teams_lookup(linked_teams)
