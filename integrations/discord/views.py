"""Discord's public endpoints: the OAuth callback and the interactions endpoint.

Interactions are verified with the app's Ed25519 public key (PyNaCl) over
timestamp + raw body; anything else is a 401, as Discord requires. A command is answered
at once: a refusal as an ephemeral message, a job as a deferred response that the
outbox (`integrations.outbox`) fills in (Discord allows 3 seconds for the first answer).
"""

from __future__ import annotations

import json
import re
import time

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from deplite.api.errors import error_body
from triggers.models import ChatProvider

from .. import services
from ..models import CommandKind
from ..oauth import complete_install
from ..providers import provider_status
from . import components, install, transport

PING, APPLICATION_COMMAND = 1, 2
PONG, CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE = 1, 4, 5
EPHEMERAL = 64
# A signed interaction is accepted this long around its timestamp (Slack's window): a
# captured request cannot be replayed later.
TIMESTAMP_WINDOW_SECONDS = 300
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")


def timestamp_fresh(timestamp: str, *, now: float | None = None) -> bool:
    """Whether `X-Signature-Timestamp` is Unix seconds within the window of now."""
    if not _TIMESTAMP_RE.match(timestamp):
        return False
    return abs((time.time() if now is None else now) - int(timestamp)) <= TIMESTAMP_WINDOW_SECONDS


def signature_valid(*, public_key_hex: str, signature_hex: str, timestamp: str, body: bytes) -> bool:
    try:
        VerifyKey(bytes.fromhex(public_key_hex)).verify(timestamp.encode() + body, bytes.fromhex(signature_hex))
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def _reply(content: str, *, private: bool = True) -> JsonResponse:
    data = {"content": content, "allowed_mentions": {"parse": []}}
    if private:
        data["flags"] = EPHEMERAL
    return JsonResponse({"type": CHANNEL_MESSAGE, "data": data})


def _obj(value) -> dict:
    """A nested object of the (signed) payload, or {} if Discord ever sends something else."""
    return value if isinstance(value, dict) else {}


def _command_text(data: dict) -> str:
    raw = data.get("options")
    options = {o.get("name"): o.get("value") for o in raw if isinstance(o, dict)} if isinstance(raw, list) else {}
    return " ".join(str(options[name]) for name in ("keyword", "args") if options.get(name))


@csrf_exempt
@require_POST
def interactions(request):
    """`POST /integrations/discord/interactions`."""
    status = provider_status(ChatProvider.DISCORD)
    if not status.configured:
        return JsonResponse(error_body("discord_not_configured", status.message), status=503)
    body = request.body
    timestamp = request.headers.get("X-Signature-Timestamp", "")
    if not signature_valid(
        public_key_hex=settings.DISCORD_PUBLIC_KEY,
        signature_hex=request.headers.get("X-Signature-Ed25519", ""),
        timestamp=timestamp,
        body=body,
    ):
        return JsonResponse(error_body("invalid_signature", "Invalid request signature."), status=401)
    if not timestamp_fresh(timestamp):
        return JsonResponse(
            error_body("invalid_signature", "The request timestamp is not within 5 minutes of the server's time."),
            status=401,
        )
    try:
        interaction = json.loads(body)
    except ValueError:
        return JsonResponse(error_body("malformed_request", "The body is not JSON."), status=400)
    if not isinstance(interaction, dict):
        return JsonResponse(error_body("malformed_request", "The body is not a JSON object."), status=400)
    kind = interaction.get("type")
    if kind == PING:
        return JsonResponse({"type": PONG})
    if kind == components.MESSAGE_COMPONENT:
        return components.component(interaction)
    if kind == components.MODAL_SUBMIT:
        return components.modal_submit(interaction)
    if kind == components.AUTOCOMPLETE:
        return components.autocomplete(interaction)
    if kind != APPLICATION_COMMAND:
        return _reply("Deplite only understands `/deplite <keyword> [ref=…] [KEY=value …]`.")
    guild_id = str(interaction.get("guild_id") or "")
    if not guild_id:
        return _reply("Use /deplite in a server channel, not in a direct message.")
    user = _obj(_obj(interaction.get("member")).get("user")) or _obj(interaction.get("user"))
    receipt = services.chat_command_receive(
        provider=ChatProvider.DISCORD,
        kind=CommandKind.DISCORD_SLASH,
        external_id=str(interaction.get("id") or ""),
        team_id=guild_id,
        channel_id=str(interaction.get("channel_id") or _obj(interaction.get("channel")).get("id") or ""),
        user_id=str(user.get("id") or ""),
        user_name=str(user.get("global_name") or user.get("username") or ""),
        text=_command_text(_obj(interaction.get("data"))),
        interaction_token=str(interaction.get("token") or ""),
        application_id=str(interaction.get("application_id") or ""),
    )
    if receipt.job_created:
        # "Deplite is thinking…" until the outbox writes the job's message.
        return JsonResponse({"type": DEFERRED_CHANNEL_MESSAGE})
    return _reply(receipt.text or "Received.", private=receipt.private)


@require_GET
def oauth_callback(request):
    """`GET /integrations/discord/oauth/callback`: stores the guild the bot was added to."""

    def exchange(code: str) -> dict:
        result = transport.oauth_exchange(code=code, redirect_uri=install.redirect_uri())
        return {
            "external_id": result.guild_id,
            "name": result.guild_name,
            "bot_user_id": settings.DISCORD_CLIENT_ID,
            "scopes": result.scopes,
        }

    return complete_install(request, provider=ChatProvider.DISCORD, exchange=exchange)
