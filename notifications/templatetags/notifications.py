"""Template tags: a job's deliveries and where its result goes (job page)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import template

from notifications import selectors

register = template.Library()


@register.simple_tag
def job_deliveries(job) -> list:
    return list(selectors.job_deliveries(job=job))


@register.filter
def notify_destination(job) -> str:
    """The channel, or a webhook URL's host (not its path, which may hold a credential of the receiver)."""
    if job.notify_provider == "webhook":
        return urlsplit(job.notify_url).netloc.rpartition("@")[2]
    return job.notify_channel_id
