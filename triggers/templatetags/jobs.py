"""Template filters for job pages: durations the way notifications write them ("2m 34s"), step
sections and log lines with their time and stream."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from typing import TypedDict

from django import template
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.timesince import timesince

from triggers import extensions

register = template.Library()


def format_duration(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


@register.filter
def job_duration(job) -> str:
    """Run time from start (or claim) to finish; still counting for a running job."""
    start = job.started_at or job.claimed_at
    if start is None:
        return ""
    end = job.finished_at or (None if job.is_final else timezone.now())
    if end is None:
        return ""
    return format_duration(end - start)


@register.filter
def step_duration(step) -> str:
    if step.started_at is None or step.finished_at is None:
        return ""
    return format_duration(step.finished_at - step.started_at)


@register.simple_tag(takes_context=True)
def job_page_sections(context) -> str:
    """The sections other apps registered for the job page (triggers.extensions), rendered in place."""
    request = context.get("request")
    flat = context.flatten()
    return mark_safe("".join(render_to_string(name, flat, request=request) for name in extensions.job_page_sections()))  # noqa: S308 (rendered templates, autoescaped)  # nosec B308 B703


@register.simple_tag(takes_context=True)
def trigger_page_sections(context) -> str:
    """The sections other apps registered for the trigger page (triggers.extensions), rendered in place."""
    request = context.get("request")
    flat = context.flatten()
    names = extensions.trigger_page_sections()
    return mark_safe("".join(render_to_string(name, flat, request=request) for name in names))  # noqa: S308 (rendered templates, autoescaped)  # nosec B308 B703


@register.filter
def step_status_label(step) -> str:
    """ "failed (allowed)" for a continue-on-error failure; the status otherwise."""
    if step.allowed_failure:
        return "Failed (allowed)"
    return step.get_status_display()


@register.filter
def step_open(step) -> bool:
    """A section is open while its step runs or when it failed the job; passed ones stay collapsed."""
    return step.status == "running" or (step.status == "failed" and not step.allowed_failure)


@register.filter
def step_live_duration(step) -> str:
    if step.started_at is None:
        return ""
    return format_duration((step.finished_at or timezone.now()) - step.started_at)


@register.simple_tag
def log_lines(chunks) -> str:
    """Log chunks as lines, each with its time and, for standard error, a mark.

    A chunk is the lines a step printed within a moment (the agent batches them), so its
    time stamps each of its lines.
    """
    parts = []
    for chunk in chunks:
        at = timezone.localtime(chunk.at, UTC) if timezone.is_aware(chunk.at) else chunk.at
        stamp = format_html(
            '<time datetime="{}" title="{} UTC">{}</time>',
            at.isoformat(),
            at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            at.strftime("%H:%M:%S"),
        )
        css = "ln err" if chunk.stream == "stderr" else "ln"
        mark = (
            mark_safe('<span class="stream" title="standard error">stderr</span>')  # (a constant)  # nosec B308 B703
            if chunk.stream == "stderr"
            else ""
        )
        for line in chunk.data.splitlines(keepends=True):
            parts.append(format_html('<span class="{}">{}{}{}</span>', css, stamp, mark, line))
    return mark_safe("".join(parts))  # noqa: S308 (every part went through format_html)  # nosec B308 B703


_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class JobRefCell(TypedDict):
    ref: str  # the whole ref (the cell's title)
    ref_shown: str
    commit_url: str  # "" unless the ref is a SHA and the trigger names its repository


def job_ref_cell(job) -> JobRefCell:
    """The ref as a row shows it: a commit SHA shortened to 7 and linked to the commit when the
    trigger names its repository; any other ref whole, up to 40 characters."""
    ref = job.ref or ""
    if not _SHA_RE.match(ref):
        return {"ref": ref, "ref_shown": ref if len(ref) <= 40 else Truncator(ref).chars(40), "commit_url": ""}
    repository = job.trigger.repository_url.rstrip("/") if job.trigger_id and job.trigger else ""
    commit_url = f"{repository}/commit/{ref}" if repository.startswith(("https://", "http://")) else ""
    return {"ref": ref, "ref_shown": ref[:7], "commit_url": commit_url}


@register.filter
def job_who(job) -> str:
    """Who asked: the way (Web UI, API, Slack…), the user, token or chat user, and the GitHub
    actor a workflow passed as the `actor` param."""
    parts = [job.get_source_display()]
    if job.actor_label:
        parts.append(job.actor_label)
    actor = (job.params or {}).get("actor")
    if actor and job.source in ("webhook", "api"):
        parts.append(f"GitHub: {actor}")
    return " · ".join(parts)


_ANY_ID = "00000000-0000-0000-0000-000000000000"


class JobRow(JobRefCell):
    """One row of the jobs list, as text. A dict rather than an object: a dict key is the first
    lookup the template engine tries for `row.x`, an attribute the second (after a caught TypeError)."""

    short_id: str
    status: str  # the badge's class
    status_label: str
    error: str  # the whole error (the title); "" when none
    error_shown: str
    url: str  # the job's page
    trigger_name: str
    environment: str  # the environment's name; "" when none
    who: str
    created: str  # "YYYY-MM-DD HH:MM:SS", UTC (the title)
    created_ago: str
    duration: str


@register.simple_tag
def job_rows(page, org) -> list[JobRow]:
    """The jobs list's rows as plain text, for `triggers/_jobs_rows.html` to put in its markup
    (autoescaped, as every template value).

    Worked out here once per row rather than by filters and `{% url %}` in the template's loop: the
    template engine's per-row lookups, filters and URL reversals were most of the page's time."""
    detail = reverse("job-detail", args=[org.slug, _ANY_ID])
    now = timezone.now()
    return [_job_row(job, detail, now) for job in page]


def _job_row(job, detail_url: str, now) -> JobRow:
    return {
        "short_id": job.short_id,
        "status": job.status,
        "status_label": job.get_status_display(),
        "error": job.error,
        "error_shown": Truncator(job.error).chars(120) if job.error else "",
        "url": detail_url.replace(_ANY_ID, str(job.id)),
        "trigger_name": job.trigger_name,
        "environment": job.environment_name,
        **job_ref_cell(job),
        "who": job_who(job),
        "created": timezone.localtime(job.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "created_ago": timesince(job.created_at, now),
        "duration": job_duration(job) or "—",
    }
