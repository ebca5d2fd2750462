"""Template tags: a job's deliveries (job page)."""

from __future__ import annotations

from django import template

from notifications import selectors

register = template.Library()


@register.simple_tag
def job_deliveries(job) -> list:
    return list(selectors.job_deliveries(job=job))
