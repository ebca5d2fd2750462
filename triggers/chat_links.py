"""Whether a trigger's chat team and notify team (Slack workspace / Discord guild) are linked to its org.

The linked teams come from `extensions.linked_teams` (`integrations` fills it: `triggers` never
imports it); the trigger API and pages fetch them once per request and ask here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import ChatProvider


@dataclass(frozen=True)
class ChatConnection:
    connected: bool | None  # None: not a chat trigger
    reason: str = ""


def chat_connection(trigger, linked: dict[tuple[str, str], str]) -> ChatConnection:
    """`linked` is `linked_teams(trigger.org_id)`, fetched once per request for a list."""
    return _team_connection(
        trigger.chat_provider, trigger.chat_team_id, linked, "or the keyword never reaches this trigger."
    )


def notify_connection(trigger, linked: dict[tuple[str, str], str]) -> ChatConnection:
    """Whether the trigger's result notifications can be sent: a team this org has not linked is
    accepted when saved (it may be linked later), but each notification to it fails `not_connected`."""
    return _team_connection(
        trigger.notify_provider,
        trigger.notify_team_id,
        linked,
        "or every result notification of this trigger fails (not_connected).",
    )


def _team_connection(provider: str, team_id: str, linked: dict[tuple[str, str], str], otherwise: str) -> ChatConnection:
    if not provider or not team_id:
        return ChatConnection(connected=None)
    if (provider, team_id) in linked:
        return ChatConnection(connected=True)
    return ChatConnection(
        connected=False,
        reason=f"The {ChatProvider(provider).team_word} {team_id} is not linked to this organization: add it on the Integrations page, {otherwise}",
    )
