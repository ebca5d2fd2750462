"""The end of an OAuth install round-trip, shared by Slack and Discord: every outcome
redirects to the org's Integrations page (or, when the state names no org, to a small
result page) with a result code the page turns into a sentence. Codes, not free text, go
in the URL, so nothing a provider sends is echoed onto our pages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlencode

from django.shortcuts import redirect
from django.urls import reverse

from orgs.actors import Actor
from orgs.models import Organization
from triggers.models import ChatProvider

from . import services
from .providers import provider_status
from .transport import TransportError

logger = logging.getLogger(__name__)

RESULT_MESSAGES = {
    "connected": ("success", "{what} linked to this organization."),
    "relinked": ("success", "{what} was already linked to this organization: its access was refreshed."),
    "denied": ("error", "The install was cancelled in {provider}: nothing was linked."),
    "state_missing": ("error", "This install link is incomplete (no state). Start again from the Integrations page."),
    "state_invalid": ("error", "This install link is not valid. Start again from the Integrations page."),
    "state_expired": ("error", "This install link expired (links are valid 10 minutes). Start again."),
    "state_reused": ("error", "This install link was already used. Start again from the Integrations page."),
    "state_login_required": (
        "error",
        "Log in to Deplite as the person who started the install, then start again from the Integrations page.",
    ),
    "state_mismatch": ("error", "This install link was started by another user. Start again from your own account."),
    "state_not_admin": ("error", "Only owners and admins can link a {provider} {team}."),
    "linked_elsewhere": (
        "error",
        "This {provider} {team} is already linked to another Deplite organization; nothing was changed. "
        "Disconnect it there first.",
    ),
    "exchange_failed": ("error", "{provider} did not complete the install. Try again in a moment."),
    "not_configured": ("error", "{provider} is not configured on this server."),
}


def result_message(code: str, provider: str) -> tuple[str, str] | None:
    if code not in RESULT_MESSAGES or provider not in ChatProvider.values:
        return None
    level, template = RESULT_MESSAGES[code]
    chat = ChatProvider(provider)
    return level, template.format(provider=chat.label, team=chat.team_noun, what=chat.team_word)


def redirect_result(*, org: Organization | None, provider: str, code: str):
    query = urlencode({"result": code, "provider": provider})
    if org is None:
        return redirect(f"{reverse('integrations-oauth-result')}?{query}")
    return redirect(f"{reverse('integrations-page', kwargs={'org_slug': org.slug})}?{query}")


def complete_install(request, *, provider: str, exchange: Callable[[str], dict]):
    """`GET /integrations/<provider>/oauth/callback`: approved, denied or refused, then back to the
    org's Integrations page with the result. `exchange(code)` trades the provider's code for what
    `services.installation_link` stores (external id, name, bot user, scopes, token)."""
    try:
        state = services.oauth_state_consume(raw=request.GET.get("state", ""), provider=provider, user=request.user)
    except services.StateRefused as exc:
        return redirect_result(org=exc.org, provider=provider, code=exc.code)
    org = state.org
    if not provider_status(provider).configured:
        return redirect_result(org=org, provider=provider, code="not_configured")
    if request.GET.get("error") or not request.GET.get("code"):
        return redirect_result(org=org, provider=provider, code="denied")
    try:
        installation = exchange(request.GET["code"])
    except TransportError as exc:
        logger.warning("%s OAuth code exchange failed for org %s: %s", provider, org.slug, exc.message)
        return redirect_result(org=org, provider=provider, code="exchange_failed")
    try:
        _, created = services.installation_link(
            org=org, actor=Actor.for_user(state.user), provider=provider, **installation
        )
    except services.LinkedElsewhere:
        return redirect_result(org=org, provider=provider, code="linked_elsewhere")
    return redirect_result(org=org, provider=provider, code="connected" if created else "relinked")
