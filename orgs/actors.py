"""Who performs a service call: the `Actor` every service takes and its kind.

Plain data, no DRF: services (and tasks, chat handlers, management commands) import it
from here; the HTTP layer builds one from the authenticated principal (`orgs.scoping`).
`AuditEvent.actor_kind` uses the same `ActorKind` choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from .models import ApiToken, User


class ActorKind(models.TextChoices):
    USER = "user", "User"
    TOKEN = "token", "API token"
    AGENT = "agent", "Agent"
    SYSTEM = "system", "System"


@dataclass(frozen=True)
class Actor:
    """Who performs a service call: written into audit events and `created_by` fields."""

    kind: str  # an ActorKind value
    id: str = ""
    label: str = ""
    ip: str | None = None
    user: User | None = None
    token: ApiToken | None = None
    # Where a person acted from when not in Deplite itself ("Slack", "Discord"): audited as `data.via`.
    via: str = ""

    def stamp(self) -> dict[str, str]:
        """The fields that record who did it, on audit events and on the rows an actor creates
        (jobs, files, triggers: `orgs.models.ActorStamp`)."""
        return {"actor_kind": self.kind, "actor_id": self.id[:64], "actor_label": self.label[:255]}

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(kind=ActorKind.SYSTEM, label=label)

    @classmethod
    def for_user(cls, user: User, *, ip: str | None = None) -> Actor:
        return cls(kind=ActorKind.USER, id=str(user.pk), label=user.email, ip=ip, user=user)

    @classmethod
    def for_chat_user(cls, user: User, *, via: str) -> Actor:
        """A person acting from chat through their linked identity: their own act, with their rights."""
        return cls(kind=ActorKind.USER, id=str(user.pk), label=user.email, user=user, via=via)

    @classmethod
    def for_agent(cls, *, agent_id: object, name: str) -> Actor:
        return cls(kind=ActorKind.AGENT, id=str(agent_id), label=name)
