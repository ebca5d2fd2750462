from django.apps import AppConfig


class TriggersConfig(AppConfig):
    name = "triggers"

    def ready(self):

        from deplite import extensions as deplite_extensions
        from orgs import extensions as orgs_extensions
        from orgs.models import TokenScope
        from storage.signals import file_status_changed

        from . import input_files, receivers
        from .models import Trigger
        from .overview import triggers_overview
        from .signals import job_finished

        file_status_changed.connect(input_files.on_file_status_changed, dispatch_uid="triggers.input_files")
        # A trigger token lists triggers (orgs knows no trigger model).
        orgs_extensions.register_token_scope(TokenScope.TRIGGER, Trigger, field="triggerIds")
        orgs_extensions.register_overview(triggers_overview)
        # Metrics of jobs: created and finished counters, queued-job gauges read at scrape time.
        job_finished.connect(receivers.count_job_finished, dispatch_uid="triggers.metrics.job_finished")
        deplite_extensions.register_metrics_state(receivers.queued_jobs_state, receivers.QUEUED_HELP)
