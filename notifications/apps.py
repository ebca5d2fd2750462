from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from triggers import extensions as triggers_extensions
        from triggers.models import JobStep
        from triggers.signals import job_finished, job_result_corrected

        from . import receivers, selectors

        job_finished.connect(receivers.on_job_finished, dispatch_uid="notifications.on_job_finished")
        job_result_corrected.connect(
            receivers.on_job_result_corrected, dispatch_uid="notifications.on_job_result_corrected"
        )
        post_save.connect(receivers.on_job_step_saved, sender=JobStep, dispatch_uid="notifications.on_job_step_saved")
        triggers_extensions.register_job_detail_field("notifications", selectors.job_notifications)
        triggers_extensions.register_job_page_section("notifications/_job_deliveries.html")
