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
