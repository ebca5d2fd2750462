"""The Integrations page of an org: Add to Slack / Add to Discord, the linked workspaces
and guilds, disconnect, and — when a provider is not configured on this server — which
variables to set. Same `org_page` resolver and permission as the API."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from deplite.links import absolute_url
from orgs.pages import org_page, page_object, render_page
from orgs.permissions import Perm
from triggers.models import ChatProvider

from . import selectors, services
from .discord import install as discord_install
from .models import Installation
from .oauth import result_message
from .providers import all_provider_statuses, provider_status
from .slack import install as slack_install

_AUTHORIZE = {ChatProvider.SLACK: slack_install.authorize_url, ChatProvider.DISCORD: discord_install.authorize_url}


def _installations(request):
    return (
        request.principal.restrict(Installation.objects.select_related("installed_by"))
        .defer("bot_token")
        .order_by("provider", "name", "created_at")
    )


@org_page(Perm.INTEGRATIONS_MANAGE)
def integrations_page(request, org):
    """GET: the page. POST `install=slack|discord`: Add to Slack / Add to Discord."""
    if request.method == "POST":
        return _install(request, org, request.POST.get("install", ""))
    result = result_message(request.GET.get("result", ""), request.GET.get("provider", ""))
    providers = all_provider_statuses()
    endpoints = _endpoints()
    return render_page(
        request,
        "integrations/integrations.html",
        {
            "installations": _installations(request),
            "providers": providers,
            "setups": [{"status": p, "endpoints": endpoints[p.provider]} for p in providers],
            "result": result,
            "failures": selectors.recent_failures(org=org),
        },
    )


def _endpoints() -> dict[str, list[tuple[str, str, str]]]:
    """The URLs to paste into the Slack app's and the Discord application's settings, per
    provider: (what the setting is called there, a test id, the absolute URL). Shown whether
    or not the provider is set up yet, since an app is configured (or fixed) after that too."""
    slack_events = absolute_url("slack-events")
    return {
        ChatProvider.SLACK: [
            ("OAuth Redirect URL", "slack-redirect-url", slack_install.redirect_uri()),
            ("Event Subscriptions Request URL", "slack-events-url", slack_events),
            ("Slash command /deplite Request URL", "slack-command-url", slack_events),
        ],
        ChatProvider.DISCORD: [
            ("Interactions Endpoint URL", "discord-interactions-url", absolute_url("discord-interactions")),
            ("OAuth2 Redirect", "discord-redirect-url", discord_install.redirect_uri()),
        ],
    }


def _install(request, org, provider: str):
    """A fresh state, then off to the provider."""
    if provider not in _AUTHORIZE:
        return redirect("integrations-page", org_slug=org.slug)
    status = provider_status(provider)
    if not status.configured:
        messages.error(request, status.message)
        return redirect("integrations-page", org_slug=org.slug)
    state = services.oauth_state_issue(org=org, user=request.user, provider=provider)
    return redirect(_AUTHORIZE[provider](state=state))


@org_page(Perm.INTEGRATIONS_MANAGE)
@require_POST
def integration_disconnect(request, org, installation_id: uuid.UUID):
    installation = page_object(_installations(request), installation_id)
    label = f"{installation.get_provider_display()} {installation.name or installation.external_id}"
    services.installation_remove(installation=installation, actor=request.principal.actor)
    messages.success(request, f"Disconnected {label}. Its chat triggers no longer receive commands.")
    return redirect("integrations-page", org_slug=org.slug)


@require_GET
def oauth_result(request):
    """Where a callback lands when its state names no org (missing or unknown state)."""
    result = result_message(request.GET.get("result", ""), request.GET.get("provider", ""))
    return render(request, "integrations/oauth_result.html", {"result": result}, status=400 if result else 404)
