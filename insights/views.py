"""The Insights page: every environment's DORA measures over a window, and the agent fleet's day."""

from __future__ import annotations

from django.utils import timezone
from django.views.decorators.http import require_GET

from deplite.errors import ValidationFailed
from orgs.pages import org_page, render_page
from orgs.permissions import Perm

from . import panels, selectors
from .windows import DEFAULT_WINDOW, window_parse


@org_page(Perm.JOBS_READ)
@require_GET
def insights_page(request, org):
    now = timezone.now()
    try:
        window = window_parse(request.GET.get("window"), now=now)
    except ValidationFailed:
        window = window_parse(DEFAULT_WINDOW, now=now)
    agents = None
    if request.principal.has(Perm.AGENTS_READ):
        agents = panels.agents_panel(insights=selectors.agents_insights(org=org, now=now))
    return render_page(
        request,
        "insights/insights.html",
        {"window": window, "windows": panels.window_choices(window), "agents": agents, "environments": []},
    )
