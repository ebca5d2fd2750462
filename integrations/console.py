"""Chat as a console: what one chat command does, for Slack and Discord alike.

`route` reads the command's first word: a console word (`help`, `status`, `lock`, `unlock`,
`rollback`, `cancel`, `approve`, `login`, `logout`) or a trigger's keyword in this channel.
Who acts is the linked Deplite user (`identities.chat_person`), with their role at the time
of the act; an unlinked user is answered privately with a login link and nothing happens,
except a run of a trigger whose `chat_run_policy` is `anyone_in_channel`. A user from outside
the installation's workspace (Slack Connect, another Discord guild) may do nothing but ask
for help. Every id is looked up within the installation's org only; every refusal is private.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from deplite.errors import DepliteError
from orgs.actors import Actor, ActorKind
from triggers.environments import selectors as env_selectors
from triggers.environments import services as env_services
from triggers.models import ChatProvider, ChatRunPolicy, Environment, Job, JobSource, JobStatus, Trigger
from triggers.services import job_cancel, trigger_run

from . import cards, identities
from .commands import USAGE, CommandError, console_words, parse_command
from .models import ChatCommand, Installation
from .slack import text as slack_text

COMMANDS = {
    "help": "`help`: this list",
    "status": "`status [environment]`: what is deployed, running, waiting, and locks",
    "lock": "`lock <environment> [reason…]`: hold new deploys by anyone else",
    "unlock": "`unlock <environment>`",
    "rollback": "`rollback <environment>`: deploy the previous successful deployment again",
    "cancel": "`cancel <#shortId>`",
    "approve": "`approve <#shortId>`",
    "login": "`login`: link your chat account to your Deplite account",
    "logout": "`logout`: unlink it",
}
_SHORT_ID_RE = re.compile(r"^#?([0-9a-f]{8})$")


@dataclass(frozen=True)
class Answer:
    text: str
    job: Job | None = None
    # Seen only by the chat user who typed it (Slack ephemeral / Discord ephemeral flag).
    private: bool = True


def _source(provider: str) -> str:
    return JobSource.SLACK if provider == ChatProvider.SLACK else JobSource.DISCORD


def channel_triggers(*, org_id, provider: str, team_id: str, channel_id: str) -> list[Trigger]:
    return list(
        Trigger.objects.filter(org_id=org_id, chat_provider=provider, chat_team_id=team_id, chat_channel_id=channel_id)
        .exclude(chat_keyword="")
        .select_related("environment")
        .order_by("chat_keyword")
    )


def available(triggers: list[Trigger]) -> str:
    usable = [t.chat_keyword for t in triggers if t.enabled]
    if not usable:
        return "No trigger of this organization listens in this channel yet: create a chat trigger for it in Deplite."
    return "Keywords in this channel: " + ", ".join(f"`{k}`" for k in usable) + "."


def help_text(triggers: list[Trigger]) -> str:
    lines = [available(triggers)]
    for t in triggers:
        if t.enabled:
            where = f", deploys to {t.environment.name}" if t.environment_id else ""
            lines.append(f"• `{t.chat_keyword}`: {t.name}{where}")
    lines.append(USAGE)
    lines.append("Commands: " + "; ".join(COMMANDS.values()) + ".")
    return "\n".join(lines)


def _chat_actor(command: ChatCommand) -> Actor:
    """An unlinked chat user running an `anyone_in_channel` trigger: not a Deplite user, so a
    system actor whose id and label name the chat user."""
    who = command.user_name or command.user_id
    return Actor(
        kind=ActorKind.SYSTEM,
        id=f"{command.provider}:{command.user_id}"[:64],
        label=f"{ChatProvider(command.provider).label} user {who} ({command.user_id}) in {command.team_id}",
        via=ChatProvider(command.provider).label,
    )


def _login_answer(installation: Installation, command: ChatCommand, why: str = "") -> Answer:
    url = identities.link_issue(
        installation=installation, chat_user_id=command.user_id, chat_user_name=command.user_name
    )
    lead = f"{why} " if why else ""
    return Answer(f"{lead}Link your chat account to your Deplite account (valid 10 minutes, once): {url}", private=True)


def route(*, installation: Installation, command: ChatCommand, external: bool = False) -> Answer:
    """What this command does, and its answer."""
    org = installation.org
    here = channel_triggers(
        org_id=org.pk, provider=command.provider, team_id=command.team_id, channel_id=command.channel_id
    )
    words = console_words(command.text)
    head = words[0].lower() if words else ""
    if not head:
        return Answer(f"Name a keyword. {help_text(here)}")
    if head == "help":
        return Answer(help_text(here))
    if external:
        return Answer(
            f"Only people of this {ChatProvider(command.provider).team_word} may use Deplite here.", private=True
        )
    if head == "login":
        return _login_answer(installation, command)
    person = identities.chat_person(
        org_id=org.pk, provider=command.provider, team_id=command.team_id, chat_user_id=command.user_id
    )
    if head == "logout":
        if person is None:
            return Answer("Your chat account is not linked to a Deplite account.")
        identities.identity_remove(identity=person.identity, actor=person.actor())
        return Answer(f"Unlinked: your chat acts no longer count as {person.user.email}'s.")
    # A trigger keyword of this channel named like a console word (made before the console) still runs it.
    if head in COMMANDS and not any(t.chat_keyword == head for t in here):
        if person is None:
            return _login_answer(installation, command, "Only linked members of this organization may do that.")
        try:
            return _console(head, words[1:], person=person, org=org, command=command)
        except DepliteError as exc:
            return Answer(exc.message)
    return _run(installation=installation, command=command, here=here, person=person)


def _run(*, installation: Installation, command: ChatCommand, here: list[Trigger], person) -> Answer:
    try:
        parsed = parse_command(command.text)
    except CommandError as exc:
        return Answer(f"{exc.message}\n{available(here)}")
    trigger = next((t for t in here if t.chat_keyword == parsed.keyword), None)
    if trigger is None:
        close = difflib.get_close_matches(
            parsed.keyword, [t.chat_keyword for t in here if t.enabled] + list(COMMANDS), n=1, cutoff=0.6
        )
        hint = f" Did you mean `{close[0]}`?" if close else ""
        return Answer(f"No trigger for `{parsed.keyword}` in this channel.{hint}\n{help_text(here)}")
    if not trigger.enabled:
        return Answer(f"The trigger {trigger.name} (`{trigger.chat_keyword}`) is disabled. {available(here)}")
    if person is None and trigger.chat_run_policy != ChatRunPolicy.ANYONE_IN_CHANNEL:
        return _login_answer(installation, command, f"Only linked members of {installation.org.name} may run this.")
    actor = person.actor() if person is not None else _chat_actor(command)
    try:
        result = trigger_run(
            trigger=trigger, actor=actor, source=_source(command.provider), ref=parsed.ref, params=parsed.params
        )
    except DepliteError as exc:  # a lock, a ref the environment refuses, disabled meanwhile…
        return Answer(exc.message)
    job = Job.objects.get(pk=result.job_id)
    return Answer(job_queued_text(job, provider=command.provider), job=job, private=False)


def _environment(org, name: str | None) -> Environment:
    if not name:
        raise DepliteError("Name an environment.", code="environment_required")
    environment = Environment.objects.filter(org=org, name=name.lower()).first()
    if environment is None:
        names = list(Environment.objects.filter(org=org).values_list("name", flat=True))
        close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.6)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise DepliteError(f"No environment `{name}` in {org.name}.{hint}", code="environment_not_found")
    return environment


def _job(org, word: str | None) -> Job:
    match = _SHORT_ID_RE.match((word or "").lower())
    job = Job.objects.filter(org=org, short_id=match.group(1)).select_related("org").first() if match else None
    if job is None:
        raise DepliteError(f"No job `{word or ''}` in {org.name}. Name it by its short id, e.g. `#a1b2c3`.")
    return job


def _console(head: str, args: list[str], *, person, org, command: ChatCommand) -> Answer:
    actor = person.actor()
    first = args[0] if args else None
    if head == "status":
        return Answer(status_text(org=org, name=first, command=command))
    if head == "lock":
        environment = _environment(org, first)
        reason = " ".join(args[1:])[:500]
        env_services.environment_lock(environment=environment, actor=actor, reason=reason)
        return Answer(f"Locked {environment.name}" + (f": {reason}" if reason else "."), private=False)
    if head == "unlock":
        environment = _environment(org, first)
        env_services.environment_unlock(environment=environment, actor=actor, role=person.role)
        return Answer(f"Unlocked {environment.name}.", private=False)
    if head == "rollback":
        environment = _environment(org, first)
        result = env_services.environment_rollback(
            environment=environment, actor=actor, source=_source(command.provider)
        )
        job = Job.objects.get(pk=result.job_id)
        return Answer(job_queued_text(job, provider=command.provider), job=job, private=False)
    if head == "cancel":
        job = _job(org, first)
        job_cancel(job=job, actor=actor)
        cards.cards_refresh(job_id=job.pk)  # its cards (buttons) say so too
        return Answer(f"Cancelled #{job.short_id}.", private=False)
    if head == "approve":
        job = _job(org, first)
        env_services.job_decide(job=job, actor=actor, decision="approved")
        cards.cards_refresh(job_id=job.pk)
        return Answer(f"Approved #{job.short_id} ({job.environment_name}).", private=False)
    return Answer(USAGE)  # pragma: no cover (every console word is handled above)


def status_text(*, org, name: str | None, command: ChatCommand) -> str:
    if name:
        environments = [_environment(org, name)]
    else:
        here = channel_triggers(
            org_id=org.pk, provider=command.provider, team_id=command.team_id, channel_id=command.channel_id
        )
        environments = list({t.environment.pk: t.environment for t in here if t.environment_id}.values())
        if not environments:
            environments = list(Environment.objects.filter(org=org).order_by("name")[:10])
    if not environments:
        return f"{org.name} has no environments yet."
    return "\n".join(_one_status(e) for e in environments)


def _one_status(environment: Environment) -> str:
    current = env_selectors.environment_current(environment)
    parts = [f"*{environment.name}*: " + (f"#{current.short_id} `{current.ref}`" if current else "nothing deployed")]
    queue = env_selectors.environment_queue(environment)
    running = [e.job for e in queue if e.job.status in (JobStatus.RUNNING, JobStatus.QUEUED)]
    waiting = [e for e in queue if e.job.status == JobStatus.WAITING]
    pending = [e.job for e in queue if e.job.status == JobStatus.PENDING_APPROVAL]
    if running:
        parts.append("running " + ", ".join(f"#{j.short_id} ({j.status})" for j in running))
    if waiting:
        parts.append(f"{len(waiting)} waiting (next #{waiting[0].job.short_id}: {waiting[0].reason})")
    if pending:
        parts.append(f"{len(pending)} awaiting approval (" + ", ".join(f"#{j.short_id}" for j in pending) + ")")
    if environment.is_locked():
        parts.append(environment.lock_description)
    return " · ".join(parts)


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
