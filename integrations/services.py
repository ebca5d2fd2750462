"""Writes for integrations: OAuth state, linking and removing installations, and chat
commands turned into jobs.

A chat command is routed only through the installation's org: the trigger is looked up
among that org's triggers by (provider, team, channel, keyword), and a refusal lists only
that org's keywords. Nothing here calls Slack or Discord: a reply is an outbox row written
in the command's transaction and sent after commit, so the HTTP answer never waits on a provider.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from deplite.errors import Conflict, DepliteError
from orgs.actors import Actor, ActorKind
from orgs.models import Organization, Role, User
from orgs.services import audit_record
from triggers.models import ChatProvider, Job, JobSource, JobStatus, Trigger
from triggers.services import trigger_run

from . import outbox
from .commands import CommandError, parse_command
from .models import ChatCommand, CommandKind, CommandOutcome, Installation, MessageKind, OAuthState
from .slack import text as slack_text

logger = logging.getLogger(__name__)

OAUTH_STATE_TTL = timedelta(minutes=10)


# --- OAuth state ------------------------------------------------------------------------------------


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def oauth_state_issue(*, org: Organization, user: User, provider: str) -> str:
    """A fresh single-use state for one install round-trip; only its hash is stored."""
    raw = secrets.token_urlsafe(32)
    now = timezone.now()
    OAuthState.objects.create(
        org=org, user=user, provider=provider, state_hash=_hash(raw), created_at=now, expires_at=now + OAUTH_STATE_TTL
    )
    return raw


class StateRefused(Exception):
    """The callback's state cannot be used. `code` names why; `org` is known unless the
    state is missing or unknown."""

    def __init__(self, code: str, org: Organization | None = None):
        super().__init__(code)
        self.code = code
        self.org = org


def oauth_state_consume(*, raw: str, provider: str, user: User | None) -> OAuthState:
    """Use a state once. Raises StateRefused (missing, invalid, reused, not logged in,
    mismatched, expired, not an admin).

    The callback must come from the browser session of the user who asked for the install
    URL: otherwise an admin of one org could send the link to another workspace's admin and
    have that workspace linked to their own org. Any refusal uses the state up, so a link
    refused once (forwarded, planted) can never be completed later by anyone.
    """
    if not raw:
        raise StateRefused("state_missing")
    state = OAuthState.objects.select_related("org", "user").filter(state_hash=_hash(raw), provider=provider).first()
    if state is None:
        raise StateRefused("state_invalid")
    now = timezone.now()
    # The conditional update is the single use: of two concurrent callbacks one wins, and
    # every check below refuses a state that is already spent.
    if state.used_at is not None or not OAuthState.objects.filter(pk=state.pk, used_at__isnull=True).update(
        used_at=now
    ):
        raise StateRefused("state_reused", state.org)
    if user is None or not user.is_authenticated:
        # No org in the answer: a browser without a session learns nothing about the org.
        raise StateRefused("state_login_required")
    if user.pk != state.user_id:
        # Started by someone else: a link forwarded to (or planted on) another user.
        raise StateRefused("state_mismatch", state.org)
    if state.expires_at <= now:
        raise StateRefused("state_expired", state.org)
    if not state.org.memberships.filter(user_id=state.user_id, role__in=[Role.OWNER, Role.ADMIN]).exists():
        raise StateRefused("state_not_admin", state.org)
    return state


# --- installations ---------------------------------------------------------------------------------


class LinkedElsewhere(Conflict):
    def __init__(self, provider: str):
        where = ChatProvider(provider).team_word
        super().__init__(
            f"This {where} is already linked to another Deplite organization.", code="installation_linked_elsewhere"
        )


def installation_link(
    *,
    org: Organization,
    actor: Actor,
    provider: str,
    external_id: str,
    name: str = "",
    bot_user_id: str = "",
    scopes: list[str] | None = None,
    bot_token: str = "",
) -> tuple[Installation, bool]:
    """Link a workspace/guild to `org` (OAuth callback and the `*_connect` commands).

    Re-installing into the same org refreshes the token and names; a team already linked
    to another org is refused with LinkedElsewhere and nothing of that org is touched.
    Returns (installation, created).
    """
    with transaction.atomic():
        existing = Installation.objects.select_for_update().filter(provider=provider, external_id=external_id).first()
        if existing is not None and existing.org_id != org.pk:
            raise LinkedElsewhere(provider)
        fields = {"name": name[:255], "bot_user_id": bot_user_id, "scopes": list(scopes or [])}
        if bot_token:
            fields["bot_token"] = bot_token
        if existing is None:
            try:
                with transaction.atomic():
                    installation = Installation.objects.create(
                        org=org, provider=provider, external_id=external_id, installed_by=actor.user, **fields
                    )
            except IntegrityError:  # a concurrent link of the same team won
                raise LinkedElsewhere(provider) from None
            created = True
        else:
            installation = existing
            for key, value in fields.items():
                setattr(installation, key, value)
            installation.save()
            created = False
        audit_record(
            org=org,
            actor=actor,
            action="integration.linked" if created else "integration.relinked",
            target=installation,
            data={"provider": provider, "externalId": external_id, "name": installation.name},
        )
    return installation, created


def installation_remove(*, installation: Installation, actor: Actor, reason: str = "disconnected") -> None:
    """Unlink a workspace/guild. Its triggers stay and read `chatConnected: false`."""
    with transaction.atomic():
        audit_record(
            org=installation.org,
            actor=actor,
            action="integration.removed",
            target=installation,
            data={
                "provider": installation.provider,
                "externalId": installation.external_id,
                "name": installation.name,
                "reason": reason,
            },
        )
        installation.delete()


def installation_remove_for_team(*, provider: str, external_id: str, reason: str) -> bool:
    """The provider says the app is gone from a team (Slack `app_uninstalled` /
    `tokens_revoked`): remove its installation, whichever org it is in. Idempotent."""
    installation = Installation.objects.select_related("org").filter(provider=provider, external_id=external_id).first()
    if installation is None:
        return False
    installation_remove(installation=installation, actor=Actor.system(f"{provider} ({reason})"), reason=reason)
    return True


def linked_teams(org_id: uuid.UUID) -> dict[tuple[str, str], str]:
    """{(provider, team id): name} of the teams linked to an org (`triggers.extensions.linked_teams`)."""
    rows = Installation.objects.filter(org_id=org_id).values_list("provider", "external_id", "name")
    return {(provider, external_id): name for provider, external_id, name in rows}


# --- chat commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatReceipt:
    """What the HTTP answer to a chat command may say right away (no provider call)."""

    command: ChatCommand | None
    duplicate: bool
    job: Job | None
    # For a refusal: the ephemeral text. For a job: a short acknowledgement.
    text: str

    @property
    def job_created(self) -> bool:
        return self.job is not None


def unknown_team_text(provider: str) -> str:
    return (
        f"This {ChatProvider(provider).team_word} is not linked to a Deplite organization yet. An owner or admin "
        "can link it from the organization's Integrations page in Deplite."
    )


def chat_command_receive(
    *,
    provider: str,
    kind: str,
    external_id: str,
    team_id: str,
    channel_id: str,
    user_id: str,
    user_name: str,
    text: str,
    thread_ts: str = "",
    response_url: str = "",
    interaction_token: str = "",
    application_id: str = "",
) -> ChatReceipt:
    """Turn one chat command into at most one job, ever, for this external id.

    The command row is inserted first: a retried delivery of the same event waits on its
    unique index and then finds it, so it creates nothing. A reply that needs a provider
    call is an outbox message written in the same transaction and sent after commit; with
    the broker down it stays `pending` and the sweeper sends it later.
    """
    installation = (
        Installation.objects.select_related("org")
        .defer("bot_token")  # the request never calls the provider: no need to decrypt it
        .filter(provider=provider, external_id=team_id)
        .first()
    )
    if installation is None:
        return ChatReceipt(command=None, duplicate=False, job=None, text=unknown_team_text(provider))
    org = installation.org
    # Slack and Discord always send an id; without one there is nothing to de-duplicate on.
    external_id = (external_id or f"no-id-{uuid.uuid4()}")[:128]
    with transaction.atomic():
        try:
            with transaction.atomic():
                command = ChatCommand.objects.create(
                    org=org,
                    installation=installation,
                    provider=provider,
                    kind=kind,
                    external_id=external_id,
                    team_id=team_id[:64],
                    channel_id=channel_id[:64],
                    user_id=user_id[:64],
                    user_name=user_name[:255],
                    text=text[:4000],
                    thread_ts=thread_ts[:32],
                    response_url=response_url,
                    interaction_token=interaction_token,
                    application_id=application_id[:64],
                    outcome=CommandOutcome.REFUSED,
                )
        except IntegrityError:
            existing = (
                ChatCommand.objects.select_related("job").filter(provider=provider, external_id=external_id).first()
            )
            return ChatReceipt(
                command=existing,
                duplicate=True,
                job=existing.job if existing else None,
                text=existing.reply_text if existing else "",
            )
        job, reply = _route(installation=installation, command=command)
        if job is None and provider == ChatProvider.SLACK:
            # A refusal quotes the command back (keyword, ref, params): escaped for Slack.
            reply = slack_text.escape(reply)
        command.job = job
        command.outcome = CommandOutcome.JOB_CREATED if job is not None else CommandOutcome.REFUSED
        command.reply_text = reply
        command.save(update_fields=["job", "outcome", "reply_text"])
        # A mention is answered in its thread, and a job's message is posted where it can be
        # edited as the job moves; a refused slash command was already answered in the HTTP
        # response (ephemeral), so nothing is left to send.
        if kind == CommandKind.SLACK_MENTION or job is not None:
            _reply_enqueue(installation=installation, command=command)
    return ChatReceipt(command=command, duplicate=False, job=job, text=reply)


def _reply_enqueue(*, installation: Installation, command: ChatCommand) -> None:
    """The command's answer, as an outbox message: for a job, the message its progress and
    result edit later (a Slack slash command's goes to the channel, a mention's in its
    thread, a Discord command's fills the deferred interaction response)."""
    if command.provider == ChatProvider.SLACK:
        content = {"text": command.reply_text}
        thread_ts = command.thread_ts if command.kind == CommandKind.SLACK_MENTION else ""
    else:
        # Discord pings nobody, whatever the text says.
        content = {"content": command.reply_text, "allowed_mentions": {"parse": []}}
        thread_ts = ""
    outbox.message_enqueue(
        org_id=command.org_id,
        kind=MessageKind.CHAT_REPLY,
        provider=command.provider,
        channel=command.channel_id,
        content=content,
        job_id=command.job_id,
        installation=installation,
        command_id=command.pk,
        thread_ts=thread_ts,
        interaction_token=command.interaction_token,
    )


def _actor(command: ChatCommand) -> Actor:
    who = command.user_name or command.user_id
    # Not a Deplite user: a system actor whose id and label name the chat user.
    return Actor(
        kind=ActorKind.SYSTEM,
        id=f"{command.provider}:{command.user_id}"[:64],
        label=f"{ChatProvider(command.provider).label} user {who} ({command.user_id}) in {command.team_id}",
    )


def _channel_keywords(*, org: Organization, provider: str, team_id: str, channel_id: str) -> list[Trigger]:
    return list(
        Trigger.objects.filter(org=org, chat_provider=provider, chat_team_id=team_id, chat_channel_id=channel_id)
        .exclude(chat_keyword="")
        .order_by("chat_keyword")
    )


def _available(triggers: list[Trigger]) -> str:
    usable = [t.chat_keyword for t in triggers if t.enabled]
    if not usable:
        return "No trigger of this organization listens in this channel yet: create a chat trigger for it in Deplite."
    return "Keywords in this channel: " + ", ".join(f"`{k}`" for k in usable) + "."


def _route(*, installation: Installation, command: ChatCommand) -> tuple[Job | None, str]:
    """The job for this command, or None and a refusal that helps."""
    org = installation.org
    here = _channel_keywords(org=org, provider=command.provider, team_id=command.team_id, channel_id=command.channel_id)
    try:
        parsed = parse_command(command.text)
    except CommandError as exc:
        return None, f"{exc.message}\n{_available(here)}"
    trigger = next((t for t in here if t.chat_keyword == parsed.keyword), None)
    if trigger is None:
        return None, f"No trigger for `{parsed.keyword}` in this channel. {_available(here)}"
    if not trigger.enabled:
        return None, f"The trigger {trigger.name} (`{trigger.chat_keyword}`) is disabled. {_available(here)}"
    source = JobSource.SLACK if command.provider == ChatProvider.SLACK else JobSource.DISCORD
    try:
        result = trigger_run(
            trigger=trigger, actor=_actor(command), source=source, ref=parsed.ref, params=parsed.params
        )
    except DepliteError as exc:  # disabled meanwhile, an input file that is not available…
        return None, exc.message
    job = Job.objects.get(pk=result.job_id)
    return job, job_queued_text(job, provider=command.provider)


def job_queued_text(job: Job, *, provider: str) -> str:
    params = " ".join(f"{k}={v}" for k, v in job.params.items())
    # An environment may hold it: say so, rather than "queued".
    state = {JobStatus.PENDING_APPROVAL: "waiting for approval", JobStatus.WAITING: "waiting its turn"}.get(
        job.status, "queued"
    )
    where = f" to {job.environment_name}" if job.environment_name else ""
    text = f"Job #{job.short_id} {state} — {job.trigger_name}{where} (ref `{job.ref}`" + (
        f" · {params}" if params else ""
    )
    if provider == ChatProvider.SLACK:
        # Everything but the link is the user's text: escaped, so it cannot ping or link.
        return f"{slack_text.escape(text)}) · <{job.url}|View job>"
    # Discord messages are sent with `allowed_mentions: {"parse": []}`: nobody is pinged.
    return f"{text}) · {job.url}"
