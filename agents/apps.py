from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"

    def ready(self):
        from orgs import overview
        from triggers import queue_diagnostics

        from . import schema  # noqa: F401
        from .overview import agents_overview
        from .selectors import online_agent_labels

        overview.register(agents_overview)

        # triggers tells why a job waits ("No online agent has the labels …") from what agents know.
        queue_diagnostics.register_online_agents(online_agent_labels)
