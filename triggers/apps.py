from django.apps import AppConfig


class TriggersConfig(AppConfig):
    name = "triggers"

    def ready(self):

        from deplite import metrics
        from orgs import overview, token_scopes
        from orgs.models import TokenScope
        from storage.signals import file_status_changed

        from . import input_files, receivers
        from .models import Trigger
        from .overview import triggers_overview
        from .signals import job_finished

        file_status_changed.connect(input_files.on_file_status_changed, dispatch_uid="triggers.input_files")
        # A trigger token lists triggers (orgs knows no trigger model).
        token_scopes.register(TokenScope.TRIGGER, Trigger, field="triggerIds")
        overview.register(triggers_overview)
        # Metrics of jobs: created and finished counters, queued-job gauges read at scrape time.
        job_finished.connect(receivers.count_job_finished, dispatch_uid="triggers.metrics.job_finished")
        metrics.register_state(receivers.queued_jobs_state, receivers.QUEUED_HELP)
