"""Slack's public endpoints: the OAuth callback and the events / slash-command endpoint.

The events endpoint is a plain Django view handed to slack-bolt's Django adapter: it is
outside `/api/`, so the API's JSON-only parser and body middlewares never see it, and it is
CSRF-exempt (Slack signs it instead).
"""

from __future__ import annotations

import logging
import re

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from slack_bolt.adapter.django import SlackRequestHandler

from deplite.api.errors import error_body
from orgs.scoping import Actor

from .. import services
from ..models import Provider
from ..oauth import redirect_result
from ..providers import provider_status
from ..transport import TransportError
from . import install, transport
from .events import bolt_app

logger = logging.getLogger(__name__)

_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")


@csrf_exempt
@require_POST
def events(request):
    """`POST /integrations/slack/events`: Events API callbacks and slash commands."""
    if not provider_status(Provider.SLACK).configured:
        return JsonResponse(error_body("slack_not_configured", provider_status(Provider.SLACK).message), status=503)
    # Malformed timestamps are refused here: the verifier would raise on them.
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    if not _TIMESTAMP_RE.match(timestamp) or not request.headers.get("X-Slack-Signature"):
        return JsonResponse(error_body("invalid_signature", "The request is not signed by Slack."), status=401)
    return SlackRequestHandler(bolt_app()).handle(request)


@require_GET
def oauth_callback(request):
    """`GET /integrations/slack/oauth/callback`: approved, denied or refused, then back to
    the org's Integrations page with the result."""
    try:
        state = services.oauth_state_consume(
            raw=request.GET.get("state", ""), provider=Provider.SLACK, user=request.user
        )
    except services.StateRefused as exc:
        return redirect_result(org=exc.org, provider=Provider.SLACK, code=exc.code)
    org = state.org
    if not provider_status(Provider.SLACK).configured:
        return redirect_result(org=org, provider=Provider.SLACK, code="not_configured")
    if request.GET.get("error") or not request.GET.get("code"):
        return redirect_result(org=org, provider=Provider.SLACK, code="denied")
    try:
        result = transport.oauth_exchange(code=request.GET["code"], redirect_uri=install.redirect_uri())
    except TransportError as exc:
        logger.warning("Slack oauth.v2.access failed for org %s: %s", org.slug, exc.message)
        return redirect_result(org=org, provider=Provider.SLACK, code="exchange_failed")
    actor = Actor(kind="user", id=str(state.user.pk), label=state.user.email, user=state.user)
    try:
        _, created = services.installation_link(
            org=org,
            actor=actor,
            provider=Provider.SLACK,
            external_id=result.team_id,
            name=result.team_name,
            bot_user_id=result.bot_user_id,
            scopes=result.scopes,
            bot_token=result.bot_token,
        )
    except services.LinkedElsewhere:
        return redirect_result(org=org, provider=Provider.SLACK, code="linked_elsewhere")
    return redirect_result(org=org, provider=Provider.SLACK, code="connected" if created else "relinked")
