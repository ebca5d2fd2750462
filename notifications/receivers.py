"""Signal receivers, connected once in NotificationsConfig.ready() (with dispatch_uids)."""

from __future__ import annotations

from integrations.models import Installation

from . import services


def on_job_finished(sender, *, job_id, **kwargs) -> None:
    """A job reached a final state (sent once, after commit): write and enqueue what it owes."""
    services.deliveries_for_finished_job(job_id=job_id)


def on_job_result_corrected(sender, *, job_id, **kwargs) -> None:
    """A finished job's result was corrected: edit what was posted about it, write what it now owes."""
    services.deliveries_for_corrected_job(job_id=job_id)


def on_job_step_saved(sender, instance, **kwargs) -> None:
    """A step started or finished: the job's chat reply (if any) shows the current step."""
    services.chat_reply_refresh(job_id=instance.job_id)


def on_chat_reply_posted(
    sender, *, job_id, org_id, installation_id, provider, channel_id, thread_ts, interaction_token, message_id, **kwargs
) -> None:
    """A chat-started job's reply is posted: keep that one message up to date from now on."""
    installation = Installation.objects.filter(pk=installation_id, org_id=org_id).first()
    if installation is None:  # disconnected in between: nothing to post through
        return
    services.chat_reply_register(
        job_id=job_id,
        provider=provider,
        installation=installation,
        channel=channel_id,
        thread_ts=thread_ts,
        interaction_token=interaction_token,
        message_id=message_id,
    )
