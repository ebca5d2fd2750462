"""Every extension point of `triggers`: where an app above it plugs in what triggers show or ask.

`triggers` never imports `agents`, `integrations` or `notifications` (they depend on it), so
asking them directly would be an upward import. Each registers here from its
`AppConfig.ready()`; an app that is not installed simply leaves its part out, and the page or
answer goes without it. (The signals `triggers` sends are in `signals.py`.)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

# --- The job: a field of `GET …/jobs/<id>` and sections of the job page -----------------------------
# Filled by notifications: the `notifications` list of the job detail and its deliveries section.

#: key in the job detail payload → function(job, principal) returning its JSON value.
_job_detail_fields: dict[str, Callable[..., Any]] = {}
#: template names included at the bottom of the job page, in registration order.
_job_page_sections: list[str] = []


def register_job_detail_field(key: str, build: Callable[..., Any]) -> None:
    _job_detail_fields[key] = build


def job_detail_field(key: str, job, *, default: Any = None, **context: Any) -> Any:
    build = _job_detail_fields.get(key)
    return default if build is None else build(job, **context)


def register_job_page_section(template_name: str) -> None:
    if template_name not in _job_page_sections:
        _job_page_sections.append(template_name)


def job_page_sections() -> list[str]:
    return list(_job_page_sections)


# --- The trigger page: sections other apps add (insights: the trigger's durations and success rate) ---

_trigger_page_sections: list[str] = []


def register_trigger_page_section(template_name: str) -> None:
    if template_name not in _trigger_page_sections:
        _trigger_page_sections.append(template_name)


def trigger_page_sections() -> list[str]:
    return list(_trigger_page_sections)


# --- Which chat teams an org has linked (behind `chatConnected` / `notifyConnected`) ---------------
# Filled by integrations, which owns the Slack workspaces and Discord guilds (`Installation`).
# Without it every chat or notify team reads "not connected" (`chat_links.py`).

# org id → {(provider, team id): team name} of the teams linked to that org.
LinkedTeamsLookup = Callable[[uuid.UUID], dict[tuple[str, str], str]]

_linked_teams_lookup: LinkedTeamsLookup | None = None


def register_linked_teams_lookup(lookup: LinkedTeamsLookup) -> None:
    global _linked_teams_lookup
    _linked_teams_lookup = lookup


def linked_teams(org_id: uuid.UUID) -> dict[tuple[str, str], str]:
    return _linked_teams_lookup(org_id) if _linked_teams_lookup is not None else {}


# --- The labels of an org's online agents (why a queued job waits) ---------------------------------
# Filled by agents, which knows who is online. Without it no diagnosis is given
# (`queue_diagnostics.py`).

# org id → the label set of each online agent of that org.
OnlineAgentLabels = Callable[[uuid.UUID], list[set[str]]]

_online_agent_labels: OnlineAgentLabels | None = None


def register_online_agent_labels(provider: OnlineAgentLabels) -> None:
    global _online_agent_labels
    _online_agent_labels = provider


def online_agent_labels(org_id: uuid.UUID) -> list[set[str]] | None:
    """The label set of each online agent of the org; None when no app tells."""
    return _online_agent_labels(org_id) if _online_agent_labels is not None else None
