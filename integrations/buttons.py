"""A click on a card's button (Slack Block Kit action, Discord message component), whatever the
provider: act in the request, as the linked user, and edit the cards after commit.

Nothing trusts the message the click came from: the job id is looked up within the
installation's org only, the clicker's identity and role are read now, and each act goes
through the service the API uses (its own rights checks: approvers, self-approval, lock
holder). A click by someone who may not act gets a private explanation. A double click acts
once: approving twice counts once, a second cancel or reject finds the job already ended, and
a second Re-run within a few seconds finds the first one's job (under the job's row lock).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from deplite.errors import DepliteError
from triggers.environments import services as env_services
from triggers.models import ChatProvider, Job, JobSource
from triggers.services import job_cancel, job_rerun

from . import cards, identities
from .models import Installation

RERUN_TWIN_WINDOW = timedelta(seconds=10)


@dataclass(frozen=True)
class Click:
    provider: str
    team_id: str  # the installation's workspace / guild the click came from
    chat_user_id: str
    chat_user_name: str
    action: str  # approve | reject | cancel | rerun
    job_id: str
    reason: str = ""
    external: bool = False  # the clicker is of another workspace (Slack Connect)


@dataclass(frozen=True)
class ClickResult:
    text: str  # what the clicker alone is told
    acted: bool = False
    job: Job | None = None  # the job whose card to show now (acted)
    note: str = ""  # the card's line about this act


def _refuse(text: str) -> ClickResult:
    return ClickResult(text=text)


def button_click(click: Click) -> ClickResult:
    """Do what the button says, or explain privately why not."""
    installation = (
        Installation.objects.select_related("org")
        .defer("bot_token")
        .filter(provider=click.provider, external_id=click.team_id)
        .first()
    )
    if installation is None:
        return _refuse(f"This {ChatProvider(click.provider).team_word} is not linked to a Deplite organization.")
    if click.external:
        return _refuse(f"Only people of this {ChatProvider(click.provider).team_word} may use Deplite here.")
    if click.action not in cards.ACTIONS:
        return _refuse("Deplite does not know this button.")
    try:
        job_uuid = uuid.UUID(click.job_id)
    except (ValueError, TypeError, AttributeError):
        job_uuid = None
    job = (
        Job.objects.select_related("org").filter(pk=job_uuid, org_id=installation.org_id).first() if job_uuid else None
    )
    if job is None:
        # Another org's job (or none): the same answer, nothing about it is told.
        return _refuse("This job is not in this organization.")
    person = identities.chat_person(
        org_id=installation.org_id, provider=click.provider, team_id=click.team_id, chat_user_id=click.chat_user_id
    )
    if person is None:
        url = identities.link_issue(
            installation=installation, chat_user_id=click.chat_user_id, chat_user_name=click.chat_user_name
        )
        return _refuse(f"Only linked members of {installation.org.name} may act here. Link your account: {url}")
    actor = person.actor()
    who = f"@{click.chat_user_name}" if click.chat_user_name else person.user.email
    stamp = timezone.localtime().strftime("%H:%M")
    try:
        with transaction.atomic():
            text, note, shown = _act(click, job=job, actor=actor)
            note = f"{note} by {who} · {stamp}"
            cards.cards_refresh(job_id=shown.pk if shown is job else job.pk, note=note)
    except DepliteError as exc:
        return _refuse(exc.message)
    job.refresh_from_db()
    return ClickResult(text=text, acted=True, job=job, note=note)


def _act(click: Click, *, job: Job, actor) -> tuple[str, str, Job]:
    if click.action == "approve":
        env_services.job_decide(job=job, actor=actor, decision="approved")
        return f"Approved #{job.short_id}.", "Approved", job
    if click.action == "reject":
        env_services.job_decide(job=job, actor=actor, decision="rejected", comment=click.reason)
        reason = f": {click.reason}" if click.reason else ""
        return f"Rejected #{job.short_id}{reason}.", f"Rejected{reason}", job
    if click.action == "cancel":
        job_cancel(job=job, actor=actor)
        return f"Cancelled #{job.short_id}.", "Cancelled", job
    # Re-run, once for a double click: the job's row lock orders two clicks, the second finds the first's job.
    Job.objects.select_for_update().filter(pk=job.pk).first()
    twin = (
        Job.objects.filter(rerun_of=job, requested_by=actor.user, created_at__gte=timezone.now() - RERUN_TWIN_WINDOW)
        .order_by("-created_at")
        .first()
    )
    if twin is not None:
        return f"Already re-run as #{twin.short_id}.", f"Re-run as #{twin.short_id}", job
    source = JobSource.SLACK if click.provider == ChatProvider.SLACK else JobSource.DISCORD
    result = job_rerun(job=job, actor=actor, source=source)
    new = Job.objects.get(pk=result.job_id)
    return f"Re-run as #{new.short_id}.", f"Re-run as #{new.short_id}", job
