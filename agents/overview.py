"""What agents add to the Overview: the "Agent online" step and the agents online."""

from __future__ import annotations

from django.urls import reverse

from orgs.extensions import Panel, Step
from orgs.permissions import Perm

from .models import Agent


def agents_overview(request, org):
    if not request.principal.has(Perm.AGENTS_READ):
        return
    agents = list(request.principal.restrict(Agent.objects.filter(revoked_at__isnull=True)).order_by("name"))
    online = [a for a in agents if a.is_online]
    url = reverse("agent-list", kwargs={"org_slug": org.slug})
    yield Step(20, "Start an agent", bool(online), url, "The agent runs workflows on your own server.")
    yield Panel(20, "agents/_overview_agents.html", {"online_agents": online, "agent_count": len(agents)})
