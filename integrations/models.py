"""Chat installations: a Slack workspace or a Discord guild linked to exactly one org.

Everything that reaches Deplite from chat (a command) or leaves it for chat (a
notification) goes through an installation of the org concerned: a command is routed
only within the installation's org, and a message is posted only with an installation of
the job's own org.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.utils import timezone

from deplite.crypto import EncryptedTextField
from orgs.models import Organization
from triggers.models import MAX_NOTIFY_URL, ChatProvider, NotifyProvider


class Installation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="installations", db_index=True)
    provider = models.CharField(max_length=16, choices=ChatProvider.choices)
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
    provider = models.CharField(max_length=16, choices=ChatProvider.choices)
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


class ChatCommand(models.Model):
    """One chat command received from an installation, whatever came of it.

    The provider's event / interaction id is unique: a retried delivery (`X-Slack-Retry-Num`)
    finds this row and creates nothing. Its answer, when one must be posted, is an
    `OutboxMessage` (kind `chat_reply`) written in the same transaction; that one message is
    then edited as the job moves. `triggers.Job` knows nothing of chat.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    installation = models.ForeignKey(
        Installation, null=True, blank=True, on_delete=models.SET_NULL, related_name="commands"
    )
    provider = models.CharField(max_length=16, choices=ChatProvider.choices)
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
    # What the command was answered (a refusal, or the job's first message).
    reply_text = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    token_trigger_field = "job__trigger_id"  # noqa: S105 (a lookup, not a secret)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "external_id"], name="chatcommand_unique_external_id"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.external_id} ({self.outcome})"


class MessageKind(models.TextChoices):
    # The trigger's notify target (notifyProvider/TeamId/ChannelId), filtered by notifyOn.
    RESULT = "result", "Result"
    # The answer to a chat command: for a job, the one message edited in place as it moves
    # (queued → running with its step → result), whatever notifyOn says.
    CHAT_REPLY = "chat_reply", "Chat reply"
    # A failed chat-started job whose reply sits in a thread is also posted to the channel.
    CHAT_FAILURE = "chat_failure", "Chat failure"
    # Seen only by one chat user (Slack chat.postEphemeral): a login link, a refusal of a mention.
    CHAT_PRIVATE = "chat_private", "Private chat answer"
    # A job waiting for approval, with its buttons, in the environment's approval channel.
    APPROVAL = "approval", "Approval request"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # owed: its content is not (yet) what the channel shows
    SENDING = "sending", "Sending"  # claimed by a worker until lease_until
    SENT = "sent", "Sent"  # the channel shows the latest content
    FAILED = "failed", "Failed"  # a permanent error, or transient ones past the attempt cap


class OutboxMessage(models.Model):
    """One message Deplite owes a chat channel: the outbox every chat message goes through.

    The row is written *before* anything is sent (healthchecks' Notification pattern), in
    the transaction that makes the message owed, unique per job × kind × target. Its
    `content` is the provider's message body, rendered by whoever owes it; a revision with
    a higher `content_rank` replaces it, so an edited message only ever moves forward
    (each state reads once, in order). Delivery claims the row with a lease before calling
    the provider and records the provider's message id after: a worker that dies in between
    leaves a row whose lease runs out, and the next attempt first asks the provider whether
    the message already exists (Slack message metadata, Discord's message nonce).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    # Null for the answer to a chat command that started no job (a refusal in a thread).
    job = models.ForeignKey(
        "triggers.Job", null=True, blank=True, on_delete=models.CASCADE, related_name="outbox_messages"
    )
    command = models.ForeignKey(
        ChatCommand, null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox_messages"
    )
    kind = models.CharField(max_length=16, choices=MessageKind.choices, default=MessageKind.RESULT)
    provider = models.CharField(max_length=10, choices=NotifyProvider.choices)
    # Only ever an installation of the row's own org; null when the target names none (not_connected).
    installation = models.ForeignKey(
        Installation, null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox_messages"
    )
    team_id = models.CharField(max_length=64, blank=True, default="")
    # A chat channel id; for a webhook, the SHA-256 of its URL (one row per job × endpoint).
    channel = models.CharField(max_length=64)
    # A webhook's endpoint, copied from the job (the URL the trigger had when the job was created).
    target_url = models.CharField(max_length=MAX_NOTIFY_URL, blank=True, default="")
    # Slack: the thread a reply goes in. Discord: the interaction whose original response it is.
    thread_ts = models.CharField(max_length=32, blank=True, default="")
    interaction_token = EncryptedTextField(blank=True, default="")
    interaction_at = models.DateTimeField(null=True, blank=True)

    content = models.JSONField(default=dict, blank=True)
    content_rank = models.IntegerField(default=0)
    # The rank of the content the channel shows (null: nothing delivered yet).
    sent_rank = models.IntegerField(null=True, blank=True)

    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=64, blank=True, default="")
    last_error_message = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=64, blank=True, default="")

    # The lease: a worker owns the row while lease_token is its own and lease_until is ahead.
    lease_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    # Set when a lease ran out mid-call: the provider may hold the message already, look before sending.
    uncertain_since = models.DateTimeField(null=True, blank=True)
    # When the next attempt is scheduled (backoff, Retry-After, the channel's pace); the
    # sweeper takes a row still owed well past it as one whose task was lost.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the sweeper last re-enqueued it (cleared by a claim).
    swept_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    # A `trigger` API token sees the messages of its triggers' jobs.
    token_trigger_field = "job__trigger_id"  # noqa: S105 (a lookup, not a secret)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "kind", "provider", "channel"], name="outboxmessage_unique_target"),
        ]
        indexes = [
            # The sweeper's scan: rows still owed.
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=models.Q(status__in=["pending", "sending"]),
                name="outbox_owed",
            ),
            models.Index(fields=["org", "status", "-created_at"], name="outbox_org_status"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.provider}:{self.channel} ({self.status})"

    @property
    def target(self) -> str:
        """What the job page and API name as the destination: the channel, or a webhook's host
        (a webhook URL's path may hold a credential of the receiver: it is not repeated there)."""
        if self.provider == NotifyProvider.WEBHOOK:
            return urlsplit(self.target_url).netloc.rpartition("@")[2] or "webhook"
        return self.channel

    @property
    def error(self) -> str:
        """The user-facing error: code and message in one line."""
        if not self.last_error:
            return ""
        if self.last_error_message and self.last_error_message != self.last_error:
            return f"{self.last_error}: {self.last_error_message}"
        return self.last_error


class ChatIdentity(models.Model):
    """A chat user (provider, team, chat user id) who acts in chat as a Deplite user of the org.

    Made by the user themself: `/deplite login` gives the chat user a one-time link that the
    Deplite user opens while signed in (`ChatLinkToken`). A chat act then counts as that
    user's, with the role they hold at the time of the act.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    provider = models.CharField(max_length=16, choices=ChatProvider.choices)
    team_id = models.CharField(max_length=64)
    chat_user_id = models.CharField(max_length=64)
    chat_user_name = models.CharField(max_length=255, blank=True, default="")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_identities")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["provider", "chat_user_name", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "provider", "team_id", "chat_user_id"], name="chatidentity_unique_per_chat_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.chat_user_name or self.chat_user_id} → {self.user_id}"


class ChatLinkToken(models.Model):
    """The one-time link `/deplite login` answers with: single use, 10 minutes, bound to the
    installation (so to its org) and the chat user. Only the SHA-256 of its secret is stored;
    the link itself is signed (django.core.signing), so a forged one is refused unread."""

    id = models.BigAutoField(primary_key=True)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    installation = models.ForeignKey(Installation, on_delete=models.CASCADE, related_name="+")
    chat_user_id = models.CharField(max_length=64)
    chat_user_name = models.CharField(max_length=255, blank=True, default="")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
