"""Agent tests: no database, no Django models — the agent is a standalone program. The package is
imported from this checkout's source (it is also pip-installed by `make install`)."""

from __future__ import annotations

import sys

import pytest

from .fake_server import FakeDeplite
from .harness import AGENT_SRC, AgentHome

if str(AGENT_SRC) not in sys.path:
    sys.path.insert(0, str(AGENT_SRC))


@pytest.fixture
def home(tmp_path) -> AgentHome:
    return AgentHome(tmp_path / "agent-home")


@pytest.fixture
def fake_server():
    server = FakeDeplite().start()
    yield server
    server.stop()


@pytest.fixture
def agent_credentials(fake_server) -> dict[str, str]:
    agent_id, secret = fake_server.add_agent()
    return {"url": fake_server.url, "agent_id": agent_id, "secret": secret}
