"""A job's card in chat: the message with its buttons (Approve / Reject / Cancel / Re-run /
View job), posted when a job starts waiting for approval, to the environment's approval channel
and to the chat thread that started the job, and edited in place after every click.

The card is rendered from the job as it is now (so it shows only the buttons that still apply)
and the last act on it ("Approved by @ana · 14:03"); each edit outranks the one before, through
the outbox like every message. Every value a user chose (trigger name, ref, params, names) is
escaped for its provider.
"""

from __future__ import annotations

import re
import uuid

from django.db import transaction

from triggers.environments.selectors import environment_current
from triggers.models import FINAL_STATUSES, ChatProvider, Job, JobStatus

from . import outbox
from .models import MessageKind, OutboxMessage
from .selectors import chat_command_for_job, installation_for_org
from .slack import text as slack_text

ACTION_PREFIX = "deplite:"
ACTIONS = ("approve", "reject", "cancel", "rerun")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_DISCORD_MARKDOWN_RE = re.compile(r"([\\*_~`|>\[\]()#-])")
_STATE = {
    JobStatus.PENDING_APPROVAL: "Approval needed",
    JobStatus.WAITING: "Approved · waiting its turn",
    JobStatus.QUEUED: "Queued",
    JobStatus.RUNNING: "Running",
    JobStatus.SUCCEEDED: "Succeeded",
    JobStatus.FAILED: "Failed",
    JobStatus.CANCELLED: "Cancelled",
}


def discord_escape(text: str) -> str:
    """Discord markdown in a user's value shows as typed (mentions are off by `allowed_mentions`)."""
    return _DISCORD_MARKDOWN_RE.sub(r"\\\1", text)


def buttons_for(job: Job) -> list[str]:
    """The buttons that still apply to the job as it is now."""
    if job.status == JobStatus.PENDING_APPROVAL:
        return ["approve", "reject", "cancel"]
    if job.status in FINAL_STATUSES:
        return ["rerun"] if job.trigger_id else []
    return ["cancel"]


def _ref(job: Job, provider: str) -> str:
    ref = job.ref or ""
    repository = (job.trigger.repository_url.rstrip("/") if job.trigger_id and job.trigger else "") or ""
    web = repository.startswith(("https://", "http://"))
    if not (_SHA_RE.match(ref) and web):
        return f"`{slack_text.escape(ref) if provider == ChatProvider.SLACK else ref}`"
    current = environment_current(job.environment) if job.environment_id else None
    links = [(ref[:7], f"{repository}/commit/{ref}")]
    if current is not None and current.ref and current.ref != ref:
        links.append(("compare", f"{repository}/compare/{current.ref}...{ref}"))
    if provider == ChatProvider.SLACK:
        return " ".join(f"<{url}|{label}>" for label, url in links)
    return " ".join(f"[{label}](<{url}>)" for label, url in links)


def _text(job: Job, provider: str, note: str) -> str:
    esc = slack_text.escape if provider == ChatProvider.SLACK else discord_escape
    where = f" → {esc(job.environment_name)}" if job.environment_name else ""
    who = job.requested_by.email if job.requested_by_id and job.requested_by else job.actor_label
    params = " ".join(f"{k}={v}" for k, v in job.params.items())
    lines = [
        f"*{_STATE.get(job.status, job.status)}* · #{job.short_id} {esc(job.trigger_name)}{where}",
        f"Requested by {esc(who)} · ref {_ref(job, provider)}" + (f" · {esc(params)}" if params else ""),
    ]
    if note:
        lines.append(esc(note))
    return "\n".join(lines)


def render(job: Job, *, provider: str, note: str = "") -> dict:
    """The card's message body for `provider`."""
    text = _text(job, provider, note)
    buttons = buttons_for(job)
    job_id = str(job.pk)
    labels = {"approve": "Approve", "reject": "Reject", "cancel": "Cancel", "rerun": "Re-run"}
    if provider == ChatProvider.SLACK:
        elements = []
        for action in buttons:
            button = {
                "type": "button",
                "action_id": ACTION_PREFIX + action,
                "text": {"type": "plain_text", "text": labels[action]},
                "value": job_id,
            }
            if action == "approve":
                button["style"] = "primary"
            if action in ("reject", "cancel"):
                button["style"] = "danger"
            if action == "cancel":
                button["confirm"] = {
                    "title": {"type": "plain_text", "text": "Cancel this job?"},
                    "text": {"type": "plain_text", "text": f"#{job.short_id} will not run."},
                    "confirm": {"type": "plain_text", "text": "Cancel it"},
                    "deny": {"type": "plain_text", "text": "Keep it"},
                }
            elements.append(button)
        elements.append(
            {
                "type": "button",
                "action_id": ACTION_PREFIX + "view",
                "text": {"type": "plain_text", "text": "View job"},
                "url": job.url,
            }
        )
        return {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "actions", "block_id": f"deplite-job-{job.short_id}", "elements": elements},
            ],
        }
    styles = {"approve": 3, "reject": 4, "cancel": 4, "rerun": 1}
    components = [
        {"type": 2, "style": styles[action], "label": labels[action], "custom_id": f"{ACTION_PREFIX}{action}:{job_id}"}
        for action in buttons
    ]
    components.append({"type": 2, "style": 5, "label": "View job", "url": job.url})
    return {"content": text, "components": [{"type": 1, "components": components}], "allowed_mentions": {"parse": []}}


def _job(job_id) -> Job | None:
    return Job.objects.select_related("trigger", "environment", "requested_by", "org").filter(pk=job_id).first()


def approval_requests_post(*, job_id: uuid.UUID) -> list[OutboxMessage]:
    """A job started waiting for approval: its card goes to the environment's approval channel
    (through the org's own installation of that team) and to the chat thread that started it."""
    job = _job(job_id)
    if job is None or job.status != JobStatus.PENDING_APPROVAL:
        return []
    targets = []
    environment = job.environment
    if environment is not None and environment.approval_provider and environment.approval_channel_id:
        installation = installation_for_org(
            org_id=job.org_id, provider=environment.approval_provider, external_id=environment.approval_team_id
        )
        targets.append((environment.approval_provider, installation, environment.approval_channel_id, ""))
    command = chat_command_for_job(job_id=job.pk)
    if command is not None and command.installation is not None:
        thread = command.thread_ts if command.provider == ChatProvider.SLACK else ""
        targets.append((command.provider, command.installation, command.channel_id, thread))
    rows = []
    with transaction.atomic():
        for provider, installation, channel, thread_ts in targets:
            row = outbox.message_enqueue(
                org_id=job.org_id,
                kind=MessageKind.APPROVAL,
                provider=provider,
                channel=channel,
                content=render(job, provider=provider),
                rank=1,
                job_id=job.pk,
                installation=installation,
                team_id=installation.external_id if installation else "",
                thread_ts=thread_ts,
            )
            if row is not None:
                rows.append(row)
    return rows


def last_act(job: Job) -> str:
    """The card's line when no click just wrote it (a finish, a command): the last decision."""
    approval = job.approvals.order_by("-created_at").first()
    if job.cancelled_by and job.status == JobStatus.CANCELLED and approval is None:
        return f"Cancelled by {job.cancelled_by}"
    if approval is None:
        return ""
    verb = "Approved" if approval.decision == "approved" else "Rejected"
    reason = f": {approval.comment}" if approval.comment and verb == "Rejected" else ""
    return f"{verb}{reason} by {approval.user_label} · {approval.created_at:%H:%M}"


def cards_refresh(*, job_id: uuid.UUID, note: str | None = None) -> int:
    """Edit every card of the job to show it as it is now and the last act on it (`note`, or
    the last decision). Call inside the act's transaction: the edits are sent after its commit."""
    rows = list(OutboxMessage.objects.select_for_update().filter(job_id=job_id, kind=MessageKind.APPROVAL))
    if not rows:
        return 0
    job = _job(job_id)
    if job is None:
        return 0
    if note is None:
        note = last_act(job)
    revised = 0
    for row in rows:
        revised += outbox.message_revise(
            message_id=row.pk, content=render(job, provider=row.provider, note=note), rank=row.content_rank + 1
        )
    return revised
