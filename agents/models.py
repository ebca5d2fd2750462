"""The Agent: a program on the customer's server that claims and runs jobs."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from deplite.crypto import EncryptedTextField
from orgs.models import Organization


class Agent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="agents", db_index=True)
    name = models.CharField(max_length=100)
    labels = models.JSONField(default=list, blank=True)
    # The HMAC key the agent signs every request with; shown once, encrypted at rest.
    secret = EncryptedTextField()
    hostname = models.CharField(max_length=255, blank=True, default="")
    version = models.CharField(max_length=50, blank=True, default="")
    workflows = models.JSONField(default=list, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.org})"

    @property
    def is_online(self) -> bool:
        """Derived from heartbeats: an agent silent for DEPLITE_AGENT_OFFLINE_AFTER_SECONDS is offline."""
        if self.revoked_at is not None or self.last_seen_at is None:
            return False
        return timezone.now() - self.last_seen_at < timedelta(seconds=settings.DEPLITE_AGENT_OFFLINE_AFTER_SECONDS)

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "online" if self.is_online else "offline"


class AgentNonce(models.Model):
    """A nonce an agent's signed request spent: the replay store (agents.signing).

    In PostgreSQL rather than Redis so the agent protocol keeps working through a Redis outage. A
    Redis store with a PostgreSQL fallback would not be sound: a nonce spent in one store could be
    replayed against the other when the agent protocol switches between them.
    """

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+", db_index=False)
    nonce = models.CharField(max_length=128)
    # Past this, a signature carrying the nonce is outside the timestamp window anyway; purged by beat.
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "nonce"], name="agentnonce_unique_agent_nonce")]

    def __str__(self) -> str:
        return f"nonce of agent {self.agent_id}"


class ServerPulse(models.Model):
    """The web tier's own liveness mark, written by every web process on a timer (agents.pulse).

    The lost-agent reaper judges an agent by its silence only while the server could hear it: from
    `up_since`, the start of the web tier's current unbroken run of pulses. Written by the server
    itself, not inferred from agent traffic, so a lone agent that died is still found lost.
    """

    name = models.CharField(max_length=32, primary_key=True)
    up_since = models.DateTimeField()
    last_pulse_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} up since {self.up_since:%Y-%m-%d %H:%M:%S}"
