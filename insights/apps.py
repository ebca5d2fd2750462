from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "insights"

    def ready(self) -> None:
        from triggers import extensions as triggers_extensions

        # The trigger page shows its trigger's insights (triggers never imports this app).
        triggers_extensions.register_trigger_page_section("insights/_trigger_insights.html")
