"""Template filters for job pages: durations the way notifications write them ("2m 34s")."""

from __future__ import annotations

from datetime import timedelta

from django import template
from django.utils import timezone

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
