"""Discord's buttons, the reject modal and the command's autocomplete, answered in the
interaction's own HTTP response (no Discord call in the request): a refusal is ephemeral, an
act edits the card in place at once (UPDATE_MESSAGE) and its other cards through the outbox."""

from __future__ import annotations

from django.http import JsonResponse

from triggers.models import ChatProvider, Environment

from .. import buttons, cards
from ..console import COMMANDS, channel_triggers
from ..models import Installation

MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 3, 4, 5
CHANNEL_MESSAGE, UPDATE_MESSAGE, AUTOCOMPLETE_RESULT, MODAL = 4, 7, 8, 9
EPHEMERAL = 64
MAX_CHOICES = 25  # Discord's limit for autocomplete choices
# The console words whose argument is an environment.
_ENVIRONMENT_WORDS = ("status", "lock", "unlock", "rollback")


def _obj(value) -> dict:
    return value if isinstance(value, dict) else {}


def _private(text: str) -> JsonResponse:
    return JsonResponse(
        {"type": CHANNEL_MESSAGE, "data": {"content": text, "flags": EPHEMERAL, "allowed_mentions": {"parse": []}}}
    )


def _user(interaction: dict) -> dict:
    return _obj(_obj(interaction.get("member")).get("user")) or _obj(interaction.get("user"))


def _click(interaction: dict, action: str, job_id: str, reason: str = "") -> buttons.ClickResult:
    user = _user(interaction)
    return buttons.button_click(
        buttons.Click(
            provider=ChatProvider.DISCORD,
            # The guild the click came from: only that guild's installation (and org) is ever used.
            team_id=str(interaction.get("guild_id") or ""),
            chat_user_id=str(user.get("id") or ""),
            chat_user_name=str(user.get("global_name") or user.get("username") or ""),
            action=action,
            job_id=job_id,
            reason=reason,
        )
    )


def _parse(custom_id: str) -> tuple[str, str]:
    """`deplite:<action>:<job id>` → (action, job id)."""
    _, _, rest = str(custom_id or "").partition(cards.ACTION_PREFIX)
    action, _, job_id = rest.partition(":")
    return action, job_id


def component(interaction: dict) -> JsonResponse:
    """A button: Reject opens the reason modal, Cancel asks to confirm, the others act."""
    action, job_id = _parse(_obj(interaction.get("data")).get("custom_id"))
    if action == "reject":
        return JsonResponse(
            {
                "type": MODAL,
                "data": {
                    "custom_id": f"{cards.ACTION_PREFIX}reject:{job_id}",
                    "title": "Reject this deploy",
                    "components": [
                        {
                            "type": 1,
                            "components": [
                                {"type": 4, "custom_id": "reason", "label": "Why?", "style": 2, "max_length": 500}
                            ],
                        }
                    ],
                },
            }
        )
    if action == "cancel":
        confirm = {
            "type": 2,
            "style": 4,
            "label": "Cancel it",
            "custom_id": f"{cards.ACTION_PREFIX}cancel_confirm:{job_id}",
        }
        return JsonResponse(
            {
                "type": CHANNEL_MESSAGE,
                "data": {
                    "content": "Cancel this job? It will not run.",
                    "flags": EPHEMERAL,
                    "components": [{"type": 1, "components": [confirm]}],
                },
            }
        )
    confirmed_cancel = action == "cancel_confirm"
    result = _click(interaction, "cancel" if confirmed_cancel else action, job_id)
    if not result.acted:
        return _private(result.text)
    if confirmed_cancel:
        # The click was on the ephemeral confirmation: it says what happened; the card is edited by the outbox.
        return JsonResponse({"type": UPDATE_MESSAGE, "data": {"content": result.text, "components": []}})
    return JsonResponse(
        {"type": UPDATE_MESSAGE, "data": cards.render(result.job, provider=ChatProvider.DISCORD, note=result.note)}
    )


def modal_submit(interaction: dict) -> JsonResponse:
    data = _obj(interaction.get("data"))
    action, job_id = _parse(data.get("custom_id"))
    reason = ""
    for row in data.get("components") or []:
        for field in _obj(row).get("components") or []:
            if _obj(field).get("custom_id") == "reason":
                reason = str(_obj(field).get("value") or "")[:500]
    if action != "reject":
        return _private("Deplite does not know this form.")
    result = _click(interaction, "reject", job_id, reason)
    if not result.acted:
        return _private(result.text)
    if interaction.get("message"):  # the modal was opened from the card: edit it in place
        return JsonResponse(
            {"type": UPDATE_MESSAGE, "data": cards.render(result.job, provider=ChatProvider.DISCORD, note=result.note)}
        )
    return _private(result.text)


def autocomplete(interaction: dict) -> JsonResponse:
    """Choices for `/deplite keyword:` (this channel's keywords and the console words) and for
    `args:` after a console word naming an environment (the org's environments)."""
    guild_id = str(interaction.get("guild_id") or "")
    installation = Installation.objects.filter(provider=ChatProvider.DISCORD, external_id=guild_id).first()
    options = {o.get("name"): o for o in _obj(interaction.get("data")).get("options") or [] if isinstance(o, dict)}
    focused = next((name for name, o in options.items() if o.get("focused")), "keyword")
    typed = str(_obj(options.get(focused)).get("value") or "").lower()
    choices: list[str] = []
    if installation is not None:
        if focused == "keyword":
            here = channel_triggers(
                org_id=installation.org_id,
                provider=ChatProvider.DISCORD,
                team_id=guild_id,
                channel_id=str(interaction.get("channel_id") or ""),
            )
            choices = [t.chat_keyword for t in here if t.enabled] + list(COMMANDS)
        elif str(_obj(options.get("keyword")).get("value") or "").lower() in _ENVIRONMENT_WORDS:
            choices = list(Environment.objects.filter(org_id=installation.org_id).values_list("name", flat=True))
    matching = [c for c in choices if c.startswith(typed)] + [
        c for c in choices if typed in c and not c.startswith(typed)
    ]
    return JsonResponse(
        {"type": AUTOCOMPLETE_RESULT, "data": {"choices": [{"name": c, "value": c} for c in matching[:MAX_CHOICES]]}}
    )
