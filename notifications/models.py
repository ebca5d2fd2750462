"""One row per message Deplite owes a chat channel about a job: the outbox of notifications.

A row is written *before* anything is sent (healthchecks' Notification pattern), unique per
job × target, so a result is never announced twice whoever finishes the job or however
often the signal fires. Delivery claims the row with a lease before calling the provider
and records the provider's message id after: a worker that dies in between leaves a row
whose lease runs out, and the next attempt first asks the provider whether the message
already exists (Slack message metadata, Discord's message nonce) before sending again.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from deplite.crypto import EncryptedTextField
from integrations.models import Installation, Provider
from orgs.models import Organization
from triggers.models import Job


class DeliveryKind(models.TextChoices):
    # The trigger's notify target (notifyProvider/TeamId/ChannelId), filtered by notifyOn.
    RESULT = "result", "Result"
    # The one message in the thread / interaction a chat-started job came from, edited in place
    # as the job moves (queued → running with its step → result), whatever notifyOn says.
    CHAT_REPLY = "chat_reply", "Chat reply"
    # A chat-started job that failed is also posted to its channel, so it is not buried in a thread.
    CHAT_FAILURE = "chat_failure", "Chat failure"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # to be sent (or, for a chat reply, kept up to date)
    SENDING = "sending", "Sending"  # claimed by a worker until lease_until
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # a permanent error, or transient ones past the attempt cap


class NotificationDelivery(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="notification_deliveries")
    kind = models.CharField(max_length=16, choices=DeliveryKind.choices, default=DeliveryKind.RESULT)
    provider = models.CharField(max_length=10, choices=Provider.choices)
    # Only ever an installation of the job's own org; null when the target names none (not_connected).
    installation = models.ForeignKey(
        Installation, null=True, blank=True, on_delete=models.SET_NULL, related_name="notification_deliveries"
    )
    team_id = models.CharField(max_length=64, blank=True, default="")
    channel = models.CharField(max_length=64)
    # Chat replies: the Slack thread, or the Discord interaction whose original response is edited.
    thread_ts = models.CharField(max_length=32, blank=True, default="")
    interaction_token = EncryptedTextField(blank=True, default="")
    interaction_at = models.DateTimeField(null=True, blank=True)

    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=64, blank=True, default="")
    last_error_message = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=64, blank=True, default="")
    # What the chat reply shows now ("queued", "running:<step>", "final"): an edit is made only on change.
    rendered_state = models.CharField(max_length=255, blank=True, default="")

    # The lease: a worker owns the row while lease_token is its own and lease_until is ahead.
    lease_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    # Set when a lease ran out mid-call: the provider may hold the message already, look before sending.
    uncertain_since = models.DateTimeField(null=True, blank=True)
    # Earliest time of the next attempt (backoff, Retry-After, the per-channel pace).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    # A `trigger` API token sees the deliveries of its triggers' jobs.
    token_trigger_field = "job__trigger_id"  # noqa: S105 (a lookup, not a secret)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "notification delivery"
        verbose_name_plural = "notification deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["job", "kind", "provider", "channel"], name="notificationdelivery_unique_job_target"
            ),
        ]
        indexes = [
            # The sweeper's scan: rows still owed.
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=models.Q(status__in=["pending", "sending"]),
                name="notifdelivery_owed",
            ),
            models.Index(fields=["org", "status", "-created_at"], name="notifdelivery_org_status"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of job {self.job_id} to {self.provider}:{self.channel} ({self.status})"

    @property
    def error(self) -> str:
        """The user-facing error: code and message in one line."""
        if not self.last_error:
            return ""
        if self.last_error_message and self.last_error_message != self.last_error:
            return f"{self.last_error}: {self.last_error_message}"
        return self.last_error
