from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"

    def ready(self):
        from deplite import extensions as deplite_extensions
        from deplite.serving import web_process_started
        from orgs import extensions as orgs_extensions
        from triggers import extensions as triggers_extensions

        from . import pulse, schema  # noqa: F401
        from .overview import agents_overview
        from .selectors import agents_online_state, online_agent_labels

        orgs_extensions.register_overview(agents_overview)

        # triggers tells why a job waits ("No online agent has the labels …") from what agents know.
        triggers_extensions.register_online_agent_labels(online_agent_labels)

        deplite_extensions.register_metrics_state(
            agents_online_state,
            {"agents_online": "Agents seen within DEPLITE_AGENT_OFFLINE_AFTER_SECONDS (not revoked)."},
        )

        # Only a process serving requests marks the web tier as up (agents.pulse).
        web_process_started.connect(pulse.start, dispatch_uid="agents.pulse.start")
