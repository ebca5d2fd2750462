"""Signals integrations sends; `notifications` listens (integrations never imports it)."""

from django.dispatch import Signal

# Sent after commit once the reply to a chat command that started a job is posted.
# kwargs: command_id, job_id, org_id, installation_id, provider, channel_id, thread_ts,
# interaction_token, message_id. Notifications then keeps that one message up to date.
chat_reply_posted = Signal()
