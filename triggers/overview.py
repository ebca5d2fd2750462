"""What triggers add to the Overview: "Trigger created", "First job run", the environments and the
recent jobs."""

from __future__ import annotations

from django.urls import reverse

from orgs.extensions import Panel, Step
from orgs.permissions import Perm

from .environments.listing import environment_rows
from .models import Environment, Job, Trigger


def triggers_overview(request, org):
    slug = {"org_slug": org.slug}
    if request.principal.has(Perm.TRIGGERS_READ):
        trigger = request.principal.restrict(Trigger.objects.all()).order_by("created_at").first()
        url = (
            reverse("trigger-detail", kwargs={**slug, "trigger_id": trigger.pk})
            if trigger
            else reverse("trigger-new", kwargs=slug)
        )
        yield Step(
            30, "Create a trigger", trigger is not None, url, "A trigger names the workflow to run and who may run it."
        )
    if request.principal.has(Perm.JOBS_READ):
        recent = list(request.principal.restrict(Job.objects.all()).order_by("-created_at", "-id")[:5])
        url = reverse("job-list", kwargs=slug)
        yield Step(
            40, "Run a first job", bool(recent), url, "Run a trigger from its page, the API, GitHub Actions or chat."
        )
        yield Panel(10, "triggers/_overview_jobs.html", {"recent_jobs": recent})
    if request.principal.has(Perm.TRIGGERS_READ):
        environments = environment_rows(request.principal.restrict(Environment.objects.all()))
        if environments:  # an org without environments sees no empty panel
            yield Panel(5, "triggers/_overview_environments.html", {"environments": environments})
