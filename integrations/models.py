"""Chat installations: a Slack workspace or a Discord guild linked to exactly one org.

Everything that reaches Deplite from chat (a command) or leaves it for chat (a
notification) goes through an installation of the org concerned: a command is routed
only within the installation's org, and a message is posted only with an installation of
the job's own org.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from deplite.crypto import EncryptedTextField
from orgs.models import Organization


class Provider(models.TextChoices):
    SLACK = "slack", "Slack"
    DISCORD = "discord", "Discord"


class Installation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="installations", db_index=True)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    # Slack team id (T…) or Discord guild id: one org per workspace/guild, across all orgs.
    external_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True, default="")
    bot_user_id = models.CharField(max_length=64, blank=True, default="")
    scopes = models.JSONField(default=list, blank=True)
    # Slack's xoxb- token; blank for Discord, whose bot token is the app's (DISCORD_BOT_TOKEN).
    bot_token = EncryptedTextField(blank=True, default="")
    installed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "name", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "external_id"], name="installation_unique_per_provider"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.name or self.external_id} ({self.org})"


class OAuthState(models.Model):
    """The `state` of one OAuth install round-trip: single use, 10 minutes, bound to the org
    and the user who asked for the install URL. Only its SHA-256 is stored."""

    id = models.BigAutoField(primary_key=True)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class CommandKind(models.TextChoices):
    SLACK_MENTION = "slack_mention", "Slack mention"
    SLACK_SLASH = "slack_slash", "Slack slash command"
    DISCORD_SLASH = "discord_slash", "Discord slash command"


class CommandOutcome(models.TextChoices):
    JOB_CREATED = "job_created", "Job created"
    REFUSED = "refused", "Refused"


class ReplyState(models.TextChoices):
    # The answer travelled in the HTTP response itself (ephemeral refusal): nothing to post.
    NONE = "none", "None needed"
    PENDING = "pending", "Pending"
    # Claimed by a task that is calling the provider now (since `reply_claimed_at`).
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class ChatCommand(models.Model):
    """One chat command received from an installation, whatever came of it.

    The provider's event / interaction id is unique: a retried delivery (`X-Slack-Retry-Num`)
    finds this row and creates nothing. The row is where a chat-started job's conversation
    lives (channel, thread, interaction token, the reply's message id), so that the
    notifications app can edit that one message as the job moves; `triggers.Job` knows
    nothing of chat.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    installation = models.ForeignKey(
        Installation, null=True, blank=True, on_delete=models.SET_NULL, related_name="commands"
    )
    provider = models.CharField(max_length=16, choices=Provider.choices)
    kind = models.CharField(max_length=16, choices=CommandKind.choices)
    # Slack event_id (mentions), trigger_id (slash commands); Discord interaction id.
    external_id = models.CharField(max_length=128)
    team_id = models.CharField(max_length=64)
    channel_id = models.CharField(max_length=64)
    user_id = models.CharField(max_length=64, blank=True, default="")
    user_name = models.CharField(max_length=255, blank=True, default="")
    text = models.TextField(blank=True, default="")
    # Slack: the mention's ts (the reply goes in its thread) or its own thread_ts.
    thread_ts = models.CharField(max_length=32, blank=True, default="")
    # Slack slash command response_url and Discord interaction token: short-lived
    # credentials to answer this one command; encrypted like every secret.
    response_url = EncryptedTextField(blank=True, default="")
    interaction_token = EncryptedTextField(blank=True, default="")
    application_id = models.CharField(max_length=64, blank=True, default="")
    job = models.ForeignKey("triggers.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=16, choices=CommandOutcome.choices)
    reply_text = models.TextField(blank=True, default="")
    reply_state = models.CharField(max_length=10, choices=ReplyState.choices, default=ReplyState.PENDING)
    reply_attempts = models.PositiveIntegerField(default=0)
    reply_error = models.CharField(max_length=255, blank=True, default="")
    # Slack message ts / Discord message id of the reply, once posted (notifications edit it).
    reply_message_id = models.CharField(max_length=64, blank=True, default="")
    reply_claimed_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    token_trigger_field = "job__trigger_id"  # noqa: S105 (a lookup, not a secret)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "external_id"], name="chatcommand_unique_external_id"),
        ]
        indexes = [
            models.Index(fields=["reply_state", "created_at"], name="chatcommand_reply_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.external_id} ({self.outcome})"
