"""The Insights page: every environment's DORA measures over a window, and the agent fleet's day."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from deplite.errors import ValidationFailed
from orgs.pages import org_page, render_page
from orgs.permissions import Perm
from triggers.models import Environment

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
    environments = list(
        request.principal.restrict(Environment.objects.all()).order_by("name").values_list("pk", "name")
    )
    deploys = selectors.deploys_by_environment(
        org_id=org.pk, environment_ids=[pk for pk, _ in environments], window=window
    )
    sections = [
        {
            "name": name,
            "url": _environment_url(org.slug, name),
            "panel": panels.environment_panel(chart_id=f"env-{name}", deploys=deploys[pk], window=window),
        }
        for pk, name in environments
    ]
    return render_page(
        request,
        "insights/insights.html",
        {"window": window, "windows": panels.window_choices(window), "agents": agents, "environments": sections},
    )


def _environment_url(org_slug: str, name: str) -> str:
    """The environment's own page, once the product has one (its insights are there too)."""
    try:
        return reverse("environment-detail", args=[org_slug, name])
    except NoReverseMatch:
        return ""
