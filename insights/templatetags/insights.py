"""Tags the insights sections use, so another app's page includes a section without importing this app."""

from __future__ import annotations

from django import template
from django.utils import timezone

from .. import panels, selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def trigger_insights(context, trigger) -> panels.Panel:
    """The trigger page's section: its last runs' durations, success rate and steps."""
    org = context["org"]
    return panels.trigger_panel(org_slug=org.slug, insights=selectors.trigger_insights(trigger=trigger))


@register.simple_tag(takes_context=True)
def agents_insights(context) -> panels.Panel:
    org = context["org"]
    return panels.agents_panel(insights=selectors.agents_insights(org=org, now=timezone.now()))
