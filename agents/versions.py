"""Agent versions: the one this server serves, the oldest it still speaks to, and who should upgrade.

Every agent sends its version in its heartbeat, which the server keeps (`Agent.version`); agents from
0.2.0 on also name it in the User-Agent of every request (`deplite-agent/<version>`). A claim is judged by
the User-Agent's version, else by the last heartbeat's (an agent heartbeats before it claims). A client
that names no version (a script signing by hand) is not judged.
"""

from __future__ import annotations

from django.conf import settings
from packaging.version import InvalidVersion, Version

from deplite.errors import UpgradeRequired

from . import distribution, services
from .models import Agent

USER_AGENT_PREFIX = "deplite-agent/"
AGENT_TOO_OLD = "agent_too_old"


def parse(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def minimum_version() -> Version:
    return Version(settings.DEPLITE_AGENT_MIN_VERSION)


def served_version() -> str | None:
    release = distribution.served_release()
    return release.version if release is not None else None


def reported_version(request) -> str:
    """The version an agent's request names in its User-Agent, or "" when it names none."""
    agent_header = request.META.get("HTTP_USER_AGENT", "")
    if not agent_header.startswith(USER_AGENT_PREFIX):
        return ""
    return agent_header[len(USER_AGENT_PREFIX) :].split(" ", 1)[0][:50]


def is_too_old(version: str | None) -> bool:
    parsed = parse(version)
    return parsed is not None and parsed < minimum_version()


def update_available(version: str | None) -> bool:
    """True when the agent reported a version older than the one this server serves."""
    parsed, served = parse(version), parse(served_version())
    return parsed is not None and served is not None and parsed < served


def refuse_too_old(*, agent: Agent, request, version: str | None = None) -> None:
    """`426 agent_too_old` for an agent older than DEPLITE_AGENT_MIN_VERSION: the version its request names
    (User-Agent), else `version` (a heartbeat's), else the one it last reported. The message carries the
    upgrade command: agents from 0.2.0 on print it and stop, older ones log it with each retry."""
    version = reported_version(request) or version or agent.version
    if not is_too_old(version):
        return
    # The Agents page then shows which version is being refused (its heartbeats are refused too).
    services.agent_record_version(agent=agent, version=version)
    command = distribution.install_command(agent_id=agent.pk)
    raise UpgradeRequired(
        f"This agent ({version}) is older than the oldest version this server accepts "
        f"({settings.DEPLITE_AGENT_MIN_VERSION}); upgrade it on its host: {command}",
        code=AGENT_TOO_OLD,
        details={
            "agentVersion": version,
            "minimumVersion": settings.DEPLITE_AGENT_MIN_VERSION,
            "servedVersion": served_version(),
            "installCommand": command,
        },
    )
