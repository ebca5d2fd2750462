"""Slack's public endpoints: the OAuth callback and the events / slash-command endpoint.

The events endpoint is a plain Django view handed to slack-bolt's Django adapter: it is
outside `/api/`, so the API's JSON-only parser and body middlewares never see it, and it is
CSRF-exempt (Slack signs it instead).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from slack_bolt.adapter.django.handler import to_bolt_request
from slack_sdk.signature import SignatureVerifier

from deplite.api.errors import error_body
from triggers.models import ChatProvider

from ..oauth import complete_install
from ..providers import provider_status
from . import install, transport
from .events import bolt_handler

_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
# Keys bolt reads as objects (`body["event"].get(...)`): anything else would crash it.
_OBJECT_KEYS = ("event", "team", "user", "channel", "enterprise", "container", "view")


def _unauthorized():
    return JsonResponse(error_body("invalid_signature", "The request is not signed by Slack."), status=401)


@csrf_exempt
@require_POST
def events(request):
    """`POST /integrations/slack/events`: Events API callbacks and slash commands."""
    status = provider_status(ChatProvider.SLACK)
    if not status.configured:
        return JsonResponse(error_body("slack_not_configured", status.message), status=503)
    # Bolt checks the same v0 signature and 5-minute window; checking first here means an
    # unsigned request never reaches bolt's body parsing, and a malformed timestamp (on
    # which the verifier would raise) is a 401 like any other bad signature.
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    if not _TIMESTAMP_RE.match(timestamp):
        return _unauthorized()
    verifier = SignatureVerifier(settings.SLACK_SIGNING_SECRET)
    if not verifier.is_valid(
        body=request.body, timestamp=timestamp, signature=request.headers.get("X-Slack-Signature")
    ):
        return _unauthorized()
    try:
        body = to_bolt_request(request).body  # bolt parses the body while building its request
    except (ValueError, TypeError, AttributeError, KeyError, IndexError):
        body = None
    # (Interactivity payloads send `"enterprise": null` outside Enterprise Grid: null is fine.)
    if not isinstance(body, dict) or any(
        body.get(k) is not None and not isinstance(body[k], dict) for k in _OBJECT_KEYS
    ):
        return JsonResponse(error_body("malformed_request", "The body is not a Slack event or command."), status=400)
    response = bolt_handler().handle(request)
    if response.status_code == 401:
        return _unauthorized()
    return response


@require_GET
def oauth_callback(request):
    """`GET /integrations/slack/oauth/callback`: the workspace the app was installed to."""

    def exchange(code: str) -> dict:
        result = transport.oauth_exchange(code=code, redirect_uri=install.redirect_uri())
        return {
            "external_id": result.team_id,
            "name": result.team_name,
            "bot_user_id": result.bot_user_id,
            "scopes": result.scopes,
            "bot_token": result.bot_token,
        }

    return complete_install(request, provider=ChatProvider.SLACK, exchange=exchange)


@csrf_exempt
@require_POST
def interactions(request):
    """`POST /integrations/slack/interactions` (the app's Interactivity Request URL): Block Kit
    button clicks and modal submissions, verified exactly as events (the same v0 signature and
    window, then the same bolt app, whose listeners are in `events`)."""
    return events(request)
