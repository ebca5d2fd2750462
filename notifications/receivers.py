"""Signal receivers, connected once in NotificationsConfig.ready() (with dispatch_uids)."""

from __future__ import annotations

from . import services


def on_job_finished(sender, *, job_id, **kwargs) -> None:
    """A job reached a final state (sent once, after commit): hand the outbox what it owes."""
    services.deliveries_for_finished_job(job_id=job_id)


def on_job_result_corrected(sender, *, job_id, **kwargs) -> None:
    """A finished job's result was corrected: edit what was posted about it, write what it now owes."""
    services.deliveries_for_corrected_job(job_id=job_id)


def on_job_step_saved(sender, instance, **kwargs) -> None:
    """A step started or finished: the job's chat reply (if any) shows the current step."""
    services.chat_reply_refresh(job_id=instance.job_id)
