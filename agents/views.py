"""Web pages for agents, on the same `org_page` resolver as every org page.

A new or rotated secret is shown once, after a redirect (Post/Redirect/Get), from an
encrypted session stash — as API tokens are — with the environment to paste on the host.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpResponseForbidden
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from deplite.api.errors import DepliteError
from deplite.links import public_base_url
from orgs.pages import add_api_errors, org_page, page_object, pop_secret, render_page, stash_secret
from orgs.permissions import Perm

from . import distribution, services, versions
from .api import AgentCreateInput
from .forms import AgentForm
from .models import Agent
from .selectors import current_jobs

_NEW_SECRET_SESSION_KEY = "deplite.agent_secret"  # noqa: S105 (a session key name)


def agent_env_snippet(agent: Agent, secret: str) -> str:
    """What to run on the agent's host (deplite_agent reads these variables)."""
    return (
        f"export DEPLITE_URL={public_base_url()}\n"
        f"export DEPLITE_AGENT_ID={agent.pk}\n"
        f"export DEPLITE_AGENT_SECRET={secret}\n"
        "deplite-agent run"
    )


@org_page(Perm.AGENTS_READ)
def agents_list(request, org):
    agents = request.principal.restrict(Agent.objects.all()).order_by("revoked_at", "name", "created_at")
    form = AgentForm()
    if request.method == "POST":
        if not request.principal.has(Perm.AGENTS_MANAGE):
            return HttpResponseForbidden("Only admins can add agents.")
        form = AgentForm(request.POST)
        if form.is_valid():
            data = AgentCreateInput(data=form.wire_data())
            if data.is_valid():
                agent, secret = services.agent_create(org=org, actor=request.principal.actor, **data.validated_data)
                stash_secret(request, _NEW_SECRET_SESSION_KEY, obj_id=agent.pk, secret=secret)
                return redirect("agent-list", org_slug=org.slug)
            add_api_errors(form, data.errors)
    shown = None
    stashed = pop_secret(request, _NEW_SECRET_SESSION_KEY, agents)
    if stashed is not None:
        agent, secret = stashed
        shown = {
            "agent": agent,
            "secret": secret,
            "snippet": agent_env_snippet(agent, secret),
            "install": distribution.install_command(agent_id=agent.pk),
            "install_systemd": distribution.install_command(agent_id=agent.pk, systemd=True),
        }
    agents = list(agents)
    running = current_jobs(agents)
    for agent in agents:
        agent.current_job = running.get(agent.pk)
        agent.too_old = versions.is_too_old(agent.version)
        if agent.too_old or versions.update_available(agent.version):
            agent.update_command = distribution.install_command(agent_id=agent.pk)
    return render_page(
        request,
        "agents/agents_list.html",
        {"agents": agents, "form": form, "shown": shown, "served_version": versions.served_version()},
        status=400 if form.is_bound else 200,
    )


def _agent(request, agent_id) -> Agent:
    return page_object(request.principal.restrict(Agent.objects.select_related("org")), agent_id)


@org_page(Perm.AGENTS_MANAGE)
@require_POST
def agent_rotate(request, org, agent_id: uuid.UUID):
    agent = _agent(request, agent_id)
    try:
        agent, secret = services.agent_rotate_secret(agent=agent, actor=request.principal.actor)
    except DepliteError as exc:
        messages.error(request, f"{agent.name}: {exc.message}")
    else:
        stash_secret(request, _NEW_SECRET_SESSION_KEY, obj_id=agent.pk, secret=secret)
        messages.success(request, f"New secret for {agent.name}: the old one no longer works.")
    return redirect("agent-list", org_slug=org.slug)


@org_page(Perm.AGENTS_MANAGE)
@require_POST
def agent_revoke(request, org, agent_id: uuid.UUID):
    agent = services.agent_revoke(agent=_agent(request, agent_id), actor=request.principal.actor)
    messages.success(request, f"Agent {agent.name} revoked: its requests are refused and its running jobs failed.")
    return redirect("agent-list", org_slug=org.slug)
