"""Fixtures shared by the agent-protocol tests: one registered agent and its signed client."""

from __future__ import annotations

import pytest

from ..factories import AgentFactory
from .signed import SignedAgent


@pytest.fixture
def agent(org_a):
    return AgentFactory(org=org_a, name="web-1", labels=["eu", "prod"])


@pytest.fixture
def client(agent):
    """Signed requests as `agent` (the agent protocol's only kind of client)."""
    return SignedAgent(agent)


@pytest.fixture
def server_up_since():
    """The web tier's liveness mark (agents.pulse), as web processes write it: call with how long the
    server has been up and how long ago its last pulse was. Replaces whatever a server process left."""
    from datetime import timedelta

    from django.utils import timezone

    from agents.models import ServerPulse
    from agents.pulse import WEB

    def mark(up_for: timedelta, last_pulse_ago: timedelta = timedelta(0)) -> None:
        now = timezone.now()
        ServerPulse.objects.all().delete()
        ServerPulse.objects.create(name=WEB, up_since=now - up_for, last_pulse_at=now - last_pulse_ago)

    return mark
