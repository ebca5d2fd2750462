from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"

    def ready(self):
        from deplite import metrics
        from deplite.serving import web_process_started
        from orgs import overview
        from triggers import queue_diagnostics

        from . import pulse, schema  # noqa: F401
        from .overview import agents_overview
        from .selectors import agents_online_state, online_agent_labels

        overview.register(agents_overview)

        # triggers tells why a job waits ("No online agent has the labels …") from what agents know.
        queue_diagnostics.register_online_agents(online_agent_labels)

        metrics.register_state(
            agents_online_state,
            {"agents_online": "Agents seen within DEPLITE_AGENT_OFFLINE_AFTER_SECONDS (not revoked)."},
        )

        # Only a process serving requests marks the web tier as up (agents.pulse).
        web_process_started.connect(pulse.start, dispatch_uid="agents.pulse.start")
