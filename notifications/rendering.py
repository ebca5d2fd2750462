"""What a notification says: the docs' plain text, plus a coloured Slack attachment / Discord embed.

The plain text is the contract (docs, "Notify"):

    [SUCCESS] Job #abc — deploy-prod
    Ref: main · Duration: 2m 34s · Exit Code: 0

    [FAILED] Job #def — deploy-prod
    Ref: feature/x · Duration: 12s · Exit Code: 1
    Error: timeout exceeded in step "Push"

and, when the job uploaded files, a last line naming them with a link to the job page's Files:

    Files: 2 files (report.html, dump.sql.gz) — https://…/jobs/<id>#files

It is the message's `text` (Slack) / `content` (Discord), so it is what users read and what
phone notifications show; the attachment / embed adds only the colour and the "View job" link,
so nothing is said twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from deplite.links import absolute_url
from integrations.slack import text as slack_text
from storage.models import FileStatus
from triggers.models import Job, JobFile, JobFileDirection, JobStatus, JobStep, StepStatus
from triggers.templatetags.jobs import format_duration

HEADS = {
    JobStatus.SUCCEEDED: "SUCCESS",
    JobStatus.FAILED: "FAILED",  # a timed-out job is a failed one ("timeout exceeded …")
    JobStatus.CANCELLED: "CANCELLED",
    JobStatus.PENDING_APPROVAL: "AWAITING APPROVAL",
    JobStatus.WAITING: "WAITING",
    JobStatus.QUEUED: "QUEUED",
    JobStatus.RUNNING: "RUNNING",
}
COLOURS = {
    JobStatus.SUCCEEDED: "#2eb67d",
    JobStatus.FAILED: "#e01e5a",
    JobStatus.CANCELLED: "#868686",
    JobStatus.PENDING_APPROVAL: "#9b59b6",
    JobStatus.WAITING: "#1d9bd1",
    JobStatus.QUEUED: "#1d9bd1",
    JobStatus.RUNNING: "#ecb22e",
}


@dataclass(frozen=True)
class Message:
    text: str
    colour: str
    link: str
    link_label: str
    # How far along the job the message is: an edit only ever replaces a lower rank, so a
    # chat reply reads each state once, in order (queued, starting, each step, the result).
    rank: int

    def slack(self) -> dict:
        """chat.postMessage / chat.update arguments: the text, and a coloured bar with the button."""
        return {
            # Refs, params, step names and errors are the user's text: never Slack markup.
            "text": slack_text.escape(self.text),
            "attachments": [
                {
                    "color": self.colour,
                    "fallback": self.link,
                    "blocks": [
                        {
                            "type": "actions",
                            "elements": [
                                {
                                    "type": "button",
                                    "text": {"type": "plain_text", "text": self.link_label},
                                    "url": self.link,
                                    "action_id": "view_job",
                                }
                            ],
                        }
                    ],
                }
            ],
        }

    def body(self, provider: str) -> dict:
        return self.slack() if provider == "slack" else self.discord()

    def discord(self) -> dict:
        """A Discord message body: the text as content, an embed with the colour and the link."""
        return {
            "content": self.text,
            "embeds": [{"title": self.link_label, "url": self.link, "color": int(self.colour.lstrip("#"), 16)}],
            "allowed_mentions": {"parse": []},
        }


def job_link(job: Job) -> str:
    return absolute_url("job-detail", org_slug=job.org.slug, job_id=job.pk)


def duration(job: Job) -> str:
    start = job.started_at or job.claimed_at
    if start is None or job.finished_at is None:
        return "-"
    return format_duration(job.finished_at - start)


def result_text(job: Job) -> str:
    """The docs' plain text for a finished job; the error line only when there is an error."""
    exit_code = "-" if job.exit_code is None else str(job.exit_code)
    lines = [
        f"[{HEADS[job.status]}] Job #{job.short_id} — {job.trigger_name}",
        f"Ref: {job.ref} · Duration: {duration(job)} · Exit Code: {exit_code}",
    ]
    if job.status != JobStatus.SUCCEEDED and job.error:
        lines.append(f"Error: {job.error}")
    files = outputs_line(job)
    if files:
        lines.append(files)
    return "\n".join(lines)


# At most this many output names in a result message; the link lists them all.
NAMED_OUTPUTS = 3


def outputs_line(job: Job) -> str:
    """`Files: 2 files (report.html, dump.sql.gz) — <job page>#files` when the job uploaded files; else ""."""
    names = list(
        JobFile.objects.filter(job=job, direction=JobFileDirection.OUTPUT, file__status=FileStatus.AVAILABLE)
        .order_by("created_at", "id")
        .values_list("file__file_name", flat=True)
    )
    if not names:
        return ""
    count = f"{len(names)} file{'s' if len(names) != 1 else ''}"
    shown = ", ".join(names[:NAMED_OUTPUTS]) + (", …" if len(names) > NAMED_OUTPUTS else "")
    return f"Files: {count} ({shown}) — {job_link(job)}#files"


def progress_text(job: Job, step: JobStep | None) -> str:
    """A chat reply while the job is on its way: queued, or running with its current step."""
    head = f"[{HEADS[job.status]}] Job #{job.short_id} — {job.trigger_name}"
    second = f"Ref: {job.ref}"
    if job.status == JobStatus.RUNNING:
        second += f" · Step: {step.name}" if step is not None else " · Starting"
    return f"{head}\n{second}"


def current_step(job: Job) -> JobStep | None:
    """The step running, or else the last one started: between a step's end and the result
    the reply keeps naming it instead of going back to "Starting"."""
    running = job.steps.filter(status=StepStatus.RUNNING).order_by("-index").first()
    return running or job.steps.filter(started_at__isnull=False).order_by("-index").first()


# Ranks: queued 0, running before any step 1, step i 2 + i, the result above every step.
FINAL_RANK = 1_000_000


def render(job: Job) -> Message:
    """The message for `job` as it is now (final result, or progress for a chat reply)."""
    link = job_link(job)
    label = f"View job #{job.short_id}"
    if job.is_final:
        return Message(result_text(job), COLOURS[job.status], link, label, rank=FINAL_RANK)
    if job.status != JobStatus.RUNNING:
        return Message(progress_text(job, None), COLOURS[job.status], link, label, rank=0)
    step = current_step(job)
    rank = 1 if step is None else 2 + min(step.index, FINAL_RANK - 3)
    return Message(progress_text(job, step), COLOURS[job.status], link, label, rank=rank)
