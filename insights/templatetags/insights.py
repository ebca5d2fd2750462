"""Tags the insights sections use, so another app's page includes a section without importing this app."""

from __future__ import annotations

from django import template
from django.utils import timezone

from deplite.errors import ValidationFailed

from .. import panels, selectors
from ..windows import DEFAULT_WINDOW, Window, window_parse

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


@register.simple_tag(takes_context=True)
def environment_insights(context, environment) -> panels.Panel:
    """The environment page's section: its DORA measures over the window the page's `?window=` names."""
    request = context.get("request")
    window = _window(request)
    deploys = selectors.deploys_by_environment(
        org_id=environment.org_id, environment_ids=[environment.pk], window=window
    )
    panel = panels.environment_panel(chart_id=f"env-{environment.name}", deploys=deploys[environment.pk], window=window)
    panel.window = window
    panel.windows = panels.window_choices(window)
    return panel


def _window(request) -> Window:
    """The page's `?window=` (7d, 30d, 90d); anything else is the default, as a page should not fail on it."""
    now = timezone.now()
    try:
        return window_parse(request.GET.get("window") if request is not None else None, now=now)
    except ValidationFailed:
        return window_parse(DEFAULT_WINDOW, now=now)
