from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"

    def ready(self):
        from deplite import metrics

        from . import (
            schema,  # noqa: F401
            selectors,
        )

        metrics.register_state(
            selectors.agents_online_state,
            {"agents_online": "Agents seen within DEPLITE_AGENT_OFFLINE_AFTER_SECONDS (not revoked)."},
        )
