"""Web pages for triggers and jobs, on the same `org_page` resolver as every org page.

Thin views: the API's input serializers validate (TriggerInput, RunInput), the services
write (trigger_create/update/delete, trigger_run, job_cancel), and every query goes
through `request.principal.restrict(...)`.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from deplite.api.errors import DepliteError
from deplite.links import absolute_url
from orgs.pages import add_api_errors, call_service, org_page, page_object, render_page
from orgs.permissions import Perm

from . import services
from .api import IDEMPOTENCY_KEY_RE, JobFilter, RunInput, TriggerInput
from .forms import RunForm, TriggerForm
from .models import Job, JobLogChunk, JobSource, JobStatus, JobStep, Trigger

# The job page shows this many log chunks at once; the live view fetches the rest in pages.
LOG_CHUNKS_ON_PAGE = 2000
LOG_CHUNKS_PER_POLL = 500
JOBS_PER_PAGE = 50


# --- jobs -------------------------------------------------------------------------------------------


@org_page(Perm.JOBS_READ)
@require_GET
def jobs_list(request, org):
    jobs = request.principal.restrict(Job.objects.all()).order_by("-created_at", "-id")
    triggers = request.principal.restrict(Trigger.objects.all()).order_by("name")
    # The API's own filter: same parameter names (?trigger=&status=) and rules.
    filterset = JobFilter(request.GET, queryset=jobs)
    filtered = filterset.qs if filterset.is_valid() else jobs.none()
    page = Paginator(filtered, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render_page(
        request,
        "triggers/jobs_list.html",
        {
            "page": page,
            "filter_errors": filterset.errors,
            "triggers": triggers,
            "statuses": JobStatus.choices,
            "selected_trigger": request.GET.get("trigger", ""),
            "selected_status": request.GET.get("status", ""),
            "query": query.urlencode(),
        },
    )


def _job(request, job_id) -> Job:
    return page_object(request.principal.restrict(Job.objects.select_related("org")), job_id)


def _live_context(request, job: Job, *, after: int, limit: int) -> dict:
    """What the job page's live parts show: summary, steps, and the log after `after`."""
    chunks = list(
        request.principal.restrict(JobLogChunk.objects.filter(job=job, seq__gt=after)).order_by("seq")[:limit]
    )
    next_after = chunks[-1].seq if chunks else after
    more_log = next_after < job.log_seq
    return {
        "job": job,
        "steps": request.principal.restrict(JobStep.objects.filter(job=job)).order_by("index"),
        "new_log": "".join(c.data for c in chunks),
        "next_after": next_after,
        # Keep asking while the job runs or log pages remain; at once if a page is pending.
        "polling": not job.is_final or more_log,
        "more_log": more_log,
        "can_cancel": request.principal.has(Perm.JOBS_CANCEL) and not job.is_final,
    }


@org_page(Perm.JOBS_READ)
@require_GET
def job_detail(request, org, job_id: uuid.UUID):
    """`/orgs/<slug>/jobs/<id>`: the page the run endpoint's `url` and notifications link to."""
    job = _job(request, job_id)
    return render_page(
        request, "triggers/job_detail.html", _live_context(request, job, after=0, limit=LOG_CHUNKS_ON_PAGE)
    )


@org_page(Perm.JOBS_READ)
@require_GET
def job_live(request, org, job_id: uuid.UUID):
    """The job page's poll: new log chunks after `?after=<seq>`, and the current summary and
    steps, as an htmx fragment (out-of-band swaps). The session-auth twin of the logs API."""
    job = _job(request, job_id)
    try:
        after = max(int(request.GET.get("after") or 0), 0)
    except ValueError:
        return HttpResponseBadRequest("after: must be an integer.")
    return render_page(
        request, "triggers/_job_live.html", _live_context(request, job, after=after, limit=LOG_CHUNKS_PER_POLL)
    )


@org_page(Perm.JOBS_CANCEL)
@require_POST
def job_cancel(request, org, job_id: uuid.UUID):
    job = _job(request, job_id)
    try:
        job = services.job_cancel(job=job, actor=request.principal.actor)
    except DepliteError as exc:
        messages.error(request, exc.message)
    else:
        if job.status == JobStatus.CANCELLED:
            messages.success(request, f"Job #{job.short_id} cancelled.")
        else:
            messages.success(request, "Cancel requested: the agent stops the job at its next report.")
    return redirect("job-detail", org_slug=org.slug, job_id=job.pk)


# --- triggers ---------------------------------------------------------------------------------------


@org_page(Perm.TRIGGERS_READ)
@require_GET
def triggers_list(request, org):
    latest = Job.objects.filter(trigger=OuterRef("pk")).order_by("-created_at")
    triggers = (
        request.principal.restrict(Trigger.objects.all())
        .annotate(
            last_job_id=Subquery(latest.values("id")[:1]),
            last_job_short_id=Subquery(latest.values("short_id")[:1]),
            last_job_status=Subquery(latest.values("status")[:1]),
        )
        .order_by("name", "created_at")
    )
    return render_page(request, "triggers/triggers_list.html", {"triggers": triggers})


def _save_trigger(request, form: TriggerForm, trigger: Trigger | None) -> Trigger | None:
    """Validate with the API's TriggerInput and call the service; errors land on the form."""
    if not form.is_valid():
        return None
    data = TriggerInput(data=form.wire_data())
    if not data.is_valid():
        add_api_errors(form, data.errors)
        return None
    actor = request.principal.actor
    if trigger is None:
        return call_service(
            form, services.trigger_create, org=request.principal.org, actor=actor, **data.validated_data
        )
    return call_service(form, services.trigger_update, trigger=trigger, actor=actor, **data.validated_data)


@org_page(Perm.TRIGGERS_MANAGE)
def trigger_new(request, org):
    form = TriggerForm()
    if request.method == "POST":
        form = TriggerForm(request.POST)
        trigger = _save_trigger(request, form, None)
        if trigger is not None:
            messages.success(request, f"Trigger {trigger.name} created.")
            return redirect("trigger-detail", org_slug=org.slug, trigger_id=trigger.pk)
    status = 400 if form.is_bound else 200
    return render_page(request, "triggers/trigger_form.html", {"form": form, "trigger": None}, status=status)


@org_page(Perm.TRIGGERS_MANAGE)
def trigger_edit(request, org, trigger_id: uuid.UUID):
    trigger = page_object(request.principal.restrict(Trigger.objects.select_related("org")), trigger_id)
    form = TriggerForm(initial=TriggerForm.initial_for(trigger))
    if request.method == "POST":
        form = TriggerForm(request.POST)
        saved = _save_trigger(request, form, trigger)
        if saved is not None:
            messages.success(request, f"Trigger {saved.name} saved.")
            return redirect("trigger-detail", org_slug=org.slug, trigger_id=saved.pk)
    status = 400 if form.is_bound else 200
    return render_page(request, "triggers/trigger_form.html", {"form": form, "trigger": trigger}, status=status)


@org_page(Perm.TRIGGERS_MANAGE)
@require_POST
def trigger_delete(request, org, trigger_id: uuid.UUID):
    trigger = page_object(request.principal.restrict(Trigger.objects.select_related("org")), trigger_id)
    name = trigger.name
    services.trigger_delete(trigger=trigger, actor=request.principal.actor)
    messages.success(request, f"Trigger {name} deleted. Its jobs are kept.")
    return redirect("trigger-list", org_slug=org.slug)


def github_actions_snippet(trigger: Trigger) -> str:
    """The docs' GitHub Actions step, pointed at this server (the run URL without /api)."""
    placeholder = "TRIGGER_ID"
    run_url = absolute_url("trigger-run", trigger_id=placeholder).replace(
        placeholder, "${{ secrets.DEPLITE_TRIGGER_ID }}"
    )
    return (
        "# .github/workflows/deploy.yml\n"
        "name: Deploy\n"
        "on:\n"
        "  push:\n"
        f"    branches: [{trigger.default_ref or 'main'}]\n"
        "jobs:\n"
        "  deploy:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - name: Trigger Deplite\n"
        "        run: |\n"
        f"          curl -X POST {run_url} \\\n"
        '            -H "Authorization: Bearer ${{ secrets.DEPLITE_TOKEN }}" \\\n'
        '            -H "Idempotency-Key: ${{ github.run_id }}" \\\n'
        '            -d \'{ "ref": "${{ github.sha }}", "params": '
        '{ "actor": "${{ github.actor }}", "repo": "${{ github.repository }}" } }\'\n'
    )


def _trigger_page(request, trigger: Trigger, run_form: RunForm, *, status: int = 200):
    recent = request.principal.restrict(Job.objects.filter(trigger=trigger)).order_by("-created_at")[:10]
    return render_page(
        request,
        "triggers/trigger_detail.html",
        {
            "trigger": trigger,
            "run_form": run_form,
            "recent_jobs": recent,
            "snippet": github_actions_snippet(trigger),
            "run_url": absolute_url("trigger-run", trigger_id=trigger.pk),
        },
        status=status,
    )


@org_page(Perm.TRIGGERS_READ)
@require_GET
def trigger_detail(request, org, trigger_id: uuid.UUID):
    trigger = page_object(request.principal.restrict(Trigger.objects.select_related("org")), trigger_id)
    return _trigger_page(request, trigger, RunForm(trigger=trigger))


@org_page(Perm.TRIGGERS_RUN)
@require_POST
def trigger_run(request, org, trigger_id: uuid.UUID):
    """The Run form: RunInput and `trigger_run`, as the run endpoint, with source `ui`."""
    trigger = page_object(request.principal.restrict(Trigger.objects.select_related("org")), trigger_id)
    form = RunForm(request.POST, trigger=trigger)
    data = RunInput(data=form.wire_data()) if form.is_valid() else None
    if data is not None and not data.is_valid():
        add_api_errors(form, data.errors)
    elif data is not None:
        ref, params = data.validated_data.get("ref"), data.validated_data.get("params") or {}
        key = form.cleaned_data.get("idempotency_key") or ""
        result = call_service(
            form,
            services.trigger_run,
            message_for={
                "idempotency_key_reused": "This form was already sent with other values; reload the page to run again."
            },
            trigger=trigger,
            actor=request.principal.actor,
            source=JobSource.UI,
            ref=ref,
            params=params,
            idempotency_key=key if IDEMPOTENCY_KEY_RE.match(key) else None,
        )
        if result is not None and result.job_id is not None:
            if not result.replayed:
                messages.success(request, f"Job #{result.body['shortId']} queued.")
            return redirect("job-detail", org_slug=org.slug, job_id=result.job_id)
        if result is not None:
            form.add_error(None, "This form was already sent; reload the page to run again.")
    return _trigger_page(request, trigger, form, status=400)
