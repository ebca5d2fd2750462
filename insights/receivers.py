"""What keeps the DORA rollup current (insights.rollup): a deploy finished or corrected, a rollback
asked for or refused, or any job row saved in a state the rollup counts (an admin's or a test's)."""

from __future__ import annotations

from .rollup import rollup_job_changed


def on_job_finished(sender, *, job_id, **kwargs) -> None:
    rollup_job_changed(job_id=job_id)


def on_job_result_corrected(sender, *, job_id, **kwargs) -> None:
    rollup_job_changed(job_id=job_id, corrected=True)


def on_job_saved(sender, *, instance, raw: bool = False, **kwargs) -> None:
    # A new queued job (the run path) has neither: it returns here without a query.
    if raw or not instance.environment_id or not (instance.finished_at or instance.rollback_of_id):
        return
    rollup_job_changed(job_id=instance.pk)
