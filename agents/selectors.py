"""Reads about agents."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import Agent


def agents_online_state() -> dict[str, float]:
    """How many agents (of every org) were seen recently: the agents_online gauge."""
    recent = timezone.now() - timedelta(seconds=settings.DEPLITE_AGENT_OFFLINE_AFTER_SECONDS)
    return {"agents_online": Agent.objects.filter(revoked_at__isnull=True, last_seen_at__gte=recent).count()}
