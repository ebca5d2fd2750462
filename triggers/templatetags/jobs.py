"""Template filters for job pages: durations the way notifications write them ("2m 34s")."""

from __future__ import annotations

from datetime import timedelta

from django import template
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe

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
    return mark_safe("".join(render_to_string(name, flat, request=request) for name in extensions.job_page_sections()))  # noqa: S308 (templates escape)
