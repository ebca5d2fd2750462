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
