from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "insights"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from triggers import extensions as triggers_extensions
        from triggers.models import Job
        from triggers.signals import job_finished, job_result_corrected

        from . import receivers

        # The trigger page shows its trigger's insights (triggers never imports this app).
        triggers_extensions.register_trigger_page_section("insights/_trigger_insights.html")
        # The DORA rollup follows the jobs (insights.rollup).
        job_finished.connect(receivers.on_job_finished, dispatch_uid="insights.rollup.finished")
        job_result_corrected.connect(receivers.on_job_result_corrected, dispatch_uid="insights.rollup.corrected")
        post_save.connect(receivers.on_job_saved, sender=Job, dispatch_uid="insights.rollup.saved")
