"""The Integrations page of an org: Add to Slack / Add to Discord, the linked workspaces
and guilds, disconnect, and — when a provider is not configured on this server — which
variables to set. Same `org_page` resolver and permission as the API."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deplite.links import absolute_url
from orgs.pages import org_page, page_object, render_page
from orgs.permissions import Perm
from triggers.models import ChatProvider

from . import identities, selectors, services
from .discord import install as discord_install
from .models import ChatIdentity, Installation
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
            "identities": _identities(request),
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
            ("Interactivity Request URL", "slack-interactions-url", absolute_url("slack-interactions")),
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


# --- chat identities ----------------------------------------------------------------------------------


def _identities(request):
    """Every identity of the org for an owner/admin, a member's own otherwise."""
    rows = request.principal.restrict(ChatIdentity.objects.select_related("user"))
    if not request.principal.has(Perm.INTEGRATIONS_MANAGE):
        rows = rows.filter(user=request.user)
    return rows.order_by("provider", "chat_user_name", "created_at")


@org_page(Perm.ORG_READ)
@require_GET
def identities_page(request, org):
    """`/orgs/<slug>/integrations/identities/`: linked chat identities (a member sees their own)."""
    return render_page(request, "integrations/identities.html", {"identities": _identities(request)})


@org_page(Perm.ORG_READ)
@require_POST
def identity_remove(request, org, identity_id: uuid.UUID):
    identity = page_object(_identities(request), identity_id)
    identities.identity_remove(identity=identity, actor=request.principal.actor)
    messages.success(
        request, f"Unlinked {identity.get_provider_display()} user {identity.chat_user_name or identity.chat_user_id}."
    )
    if request.principal.has(Perm.INTEGRATIONS_MANAGE) and request.POST.get("back") == "integrations":
        return redirect("integrations-page", org_slug=org.slug)
    return redirect("chat-identities-page", org_slug=org.slug)


@login_required
@require_http_methods(["GET", "POST"])
def identity_link(request, token: str):
    """`/integrations/chat/link/<token>`: the one-time link of `/deplite login`. GET shows who is
    about to be linked to whom (so a link planted on someone else is seen for what it is), the
    confirm button POSTs (CSRF-protected) and uses the link up."""
    try:
        if request.method == "POST":
            linked = identities.identity_link(signed=token, user=request.user, ip=request.META.get("REMOTE_ADDR"))
            return render(request, "integrations/identity_link.html", {"linked": linked.identity})
        link = identities.link_read(signed=token, user=request.user)
    except identities.LinkRefused as exc:
        return render(request, "integrations/identity_link.html", {"refused": exc.message}, status=400)
    installation = link.installation
    return render(
        request,
        "integrations/identity_link.html",
        {"link": link, "installation": installation, "team_word": ChatProvider(installation.provider).team_word},
    )
