"""Template tags: a job's deliveries (job page) and an org's recent failures (Integrations page)."""

from __future__ import annotations

from django import template

from notifications import selectors

register = template.Library()


@register.simple_tag
def job_deliveries(job) -> list:
    return list(selectors.job_deliveries(job=job))


@register.inclusion_tag("notifications/_recent_failures.html")
def notification_failures(org, limit: int = 10) -> dict:
    return {"org": org, "failures": selectors.recent_failures(org=org, limit=limit)}
