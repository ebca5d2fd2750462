"""Web pages for triggers and jobs, on the same `org_page` resolver as every org page.

Thin views: the API's input serializers validate (TriggerInput, RunInput), the services
write (trigger_create/update/delete, trigger_run, job_cancel), and every query goes
through `request.principal.restrict(...)`.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST
from rest_framework.request import Request

from deplite.api.errors import DepliteError
from deplite.api.pagination import KeysetPagination
from deplite.links import absolute_url
from orgs.pages import add_api_errors, call_service, org_page, page_object, render_page
from orgs.permissions import Perm
from storage.models import FileStatus, StoredFile

from . import queue_diagnostics, services
from .api import IDEMPOTENCY_KEY_RE, JobFilter, RunInput, TriggerInput
from .api.jobs import RerunInput
from .chat_links import chat_connection, notify_connection
from .extensions import linked_teams
from .forms import RerunForm, RunForm, TriggerForm
from .models import Job, JobLogChunk, JobSource, JobStatus, JobStep, Trigger

# The job page shows this many log chunks at once; the live view fetches the rest in pages.
LOG_CHUNKS_ON_PAGE = 2000
LOG_CHUNKS_PER_POLL = 500
JOBS_PER_PAGE = 50
# What a row of the jobs list shows (triggers.templatetags.jobs.job_rows): the rest stays in the database.
JOB_ROW_FIELDS = (
    "id",
    "short_id",
    "org_id",
    "status",
    "error",
    "trigger_name",
    "ref",
    "params",
    "source",
    "actor_label",
    "created_at",
    "claimed_at",
    "started_at",
    "finished_at",
    "trigger__id",
    "trigger__repository_url",
)


# --- jobs -------------------------------------------------------------------------------------------


def _jobs_context(request) -> dict:
    jobs = (
        request.principal.restrict(Job.objects.select_related("trigger"))
        .only(*JOB_ROW_FIELDS)
        .order_by("-created_at", "-id")
    )
    # The API's own filter: same parameter names (?trigger=&status=&q=) and rules.
    filterset = JobFilter(request.GET, queryset=jobs)
    filtered = filterset.qs if filterset.is_valid() else jobs.none()
    # The API's keyset pages: no COUNT(*), and an old page costs what the first one does.
    paginator = KeysetPagination()
    paginator.page_size = JOBS_PER_PAGE
    try:
        page = paginator.paginate_queryset(filtered, Request(request))
    except DepliteError:  # a cursor this page never gave out: start from the newest
        request.GET = request.GET.copy()
        request.GET.pop("cursor", None)
        page = paginator.paginate_queryset(filtered, Request(request))
    active = any(not job.is_final for job in page)
    return {
        "page": page,
        "newer_url": paginator.get_previous_link(),
        "older_url": paginator.get_next_link(),
        "filter_errors": filterset.errors,
        "selected_trigger": request.GET.get("trigger", ""),
        "selected_status": request.GET.get("status", ""),
        "search": request.GET.get("q", ""),
        "rows_query": request.GET.urlencode(),
        # The newest page follows new jobs; any page follows its queued and running ones.
        "polling": active or "cursor" not in request.GET,
        "poll_every": "2s" if active else "10s",
    }


@org_page(Perm.JOBS_READ)
@require_GET
def jobs_list(request, org):
    triggers = request.principal.restrict(Trigger.objects.all()).order_by("name")
    context = {**_jobs_context(request), "triggers": triggers, "statuses": JobStatus.choices}
    return render_page(request, "triggers/jobs_list.html", context)


@org_page(Perm.JOBS_READ)
@require_GET
def jobs_rows(request, org):
    """The jobs list's poll: its rows as they are now (an htmx fragment)."""
    return render_page(request, "triggers/_jobs_rows.html", _jobs_context(request))


def _job(request, job_id) -> Job:
    return page_object(request.principal.restrict(Job.objects.select_related("org")), job_id)


def job_state(job: Job) -> str:
    """What a flash message about this job describes; once it changes, the message is stale."""
    return f"{job.status}{'-cancelling' if job.cancel_requested and not job.is_final else ''}"


def _live_context(request, job: Job, *, after: int, limit: int, known_steps: int | None = None) -> dict:
    """What the job page's live parts show: summary, steps, and the log after `after`.

    The log is in sections: one per step (its lines in `step.chunks`) and one before the
    first step (`setup_chunks`: input-file downloads, the agent's own notes). `known_steps`
    is how many step sections the page already has; the steps after them are `new_steps`.
    """
    chunks = list(
        request.principal.restrict(JobLogChunk.objects.filter(job=job, seq__gt=after)).order_by("seq")[:limit]
    )
    next_after = chunks[-1].seq if chunks else after
    more_log = next_after < job.log_seq
    steps = list(request.principal.restrict(JobStep.objects.filter(job=job)).order_by("index"))
    by_index = {step.index: step for step in steps}
    for step in steps:
        step.chunks = []
    setup_chunks = []
    for chunk in chunks:
        step = by_index.get(chunk.step) if chunk.step is not None else None
        (step.chunks if step is not None else setup_chunks).append(chunk)
    known = len(steps) if known_steps is None else min(known_steps, len(steps))
    return {
        "job": job,
        "steps": steps,
        "known_steps": steps[:known],
        "new_steps": steps[known:],
        "setup_chunks": setup_chunks,
        "has_log": bool(chunks),
        "next_after": next_after,
        # Keep asking while the job runs or log pages remain; at once if a page is pending.
        "polling": not job.is_final or more_log,
        "more_log": more_log,
        "can_cancel": request.principal.has(Perm.JOBS_CANCEL) and not job.is_final,
        "state": job_state(job),
        "diagnosis": queue_diagnostics.job_diagnosis(job),
    }


@org_page(Perm.JOBS_READ)
@require_GET
def job_detail(request, org, job_id: uuid.UUID):
    """`/orgs/<slug>/jobs/<id>`: the page the run endpoint's `url` and notifications link to."""
    job = _job(request, job_id)
    return _job_page(request, job, RerunForm.for_job(job))


def _job_page(request, job: Job, rerun_form: RerunForm, *, status: int = 200):
    context = _live_context(request, job, after=0, limit=LOG_CHUNKS_ON_PAGE)
    context["rerun_form"] = rerun_form
    context["can_rerun"] = request.principal.has(Perm.TRIGGERS_RUN) and job.trigger_id is not None
    context["rerun_of"] = (
        request.principal.restrict(Job.objects.filter(pk=job.rerun_of_id)).only("id", "short_id").first()
        if job.rerun_of_id
        else None
    )
    context["reruns"] = request.principal.restrict(job.reruns.all()).only("id", "short_id", "status")[:10]
    return render_page(request, "triggers/job_detail.html", context, status=status)


@org_page(Perm.JOBS_READ)
@require_GET
def job_live(request, org, job_id: uuid.UUID):
    """The job page's poll: new log chunks after `?after=<seq>`, and the current summary and
    steps, as an htmx fragment (out-of-band swaps). The session-auth twin of the logs API."""
    job = _job(request, job_id)
    try:
        after = max(int(request.GET.get("after") or 0), 0)
        known_steps = int(request.GET["steps"]) if request.GET.get("steps") else None
    except ValueError:
        return HttpResponseBadRequest("after and steps: must be integers.")
    context = _live_context(request, job, after=after, limit=LOG_CHUNKS_PER_POLL, known_steps=known_steps)
    # The page was drawn (with its flash messages) in state `?state=`; once the job moved on,
    # those messages describe the past, so the fragment clears them.
    context["stale_messages"] = request.GET.get("state", context["state"]) != context["state"]
    return render_page(request, "triggers/_job_live.html", context)


@org_page(Perm.JOBS_READ)
@require_GET
def job_log_raw(request, org, job_id: uuid.UUID):
    """ "Download raw log": the whole output as the agent sent it, as a text file."""
    job = _job(request, job_id)
    chunks = request.principal.restrict(JobLogChunk.objects.filter(job=job)).order_by("seq")
    response = StreamingHttpResponse(
        (chunk.data.encode() for chunk in chunks.only("data").iterator(chunk_size=500)),
        content_type="text/plain; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="job-{job.short_id}.log"'
    return response


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


@org_page(Perm.TRIGGERS_RUN)
@require_POST
def job_rerun(request, org, job_id: uuid.UUID):
    """The job page's Re-run: the job's trigger, its ref and params as edited in the form."""
    job = _job(request, job_id)
    form = RerunForm(request.POST)
    if form.is_valid():
        # A ref left empty means the job's own, as in the API.
        data = RerunInput(data={"ref": form.cleaned_data["ref"] or None, "params": form.cleaned_data["params"]})
        if not data.is_valid():
            add_api_errors(form, data.errors)
        else:
            result = call_service(
                form,
                services.job_rerun,
                job=job,
                actor=request.principal.actor,
                source=JobSource.UI,
                ref=data.validated_data.get("ref"),
                params=data.validated_data.get("params") or {},
            )
            if result is not None:
                messages.success(request, f"Job #{result.body['shortId']} queued: a re-run of #{job.short_id}.")
                return redirect("job-detail", org_slug=org.slug, job_id=result.job_id)
    return _job_page(request, job, form, status=400)


# --- triggers ---------------------------------------------------------------------------------------


@org_page(Perm.TRIGGERS_READ)
@require_GET
def triggers_list(request, org):
    # The last-job pointer the run service keeps: a join, not a look through every job.
    triggers = (
        request.principal.restrict(Trigger.objects.all()).select_related("last_job").order_by("name", "created_at")
    )
    linked = linked_teams(org.pk)
    triggers = list(triggers)
    not_connected = {t.pk for t in triggers if chat_connection(t, linked).connected is False}
    return render_page(request, "triggers/triggers_list.html", {"triggers": triggers, "not_connected": not_connected})


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


def _form_context(org, form: TriggerForm, trigger: Trigger | None) -> dict:
    # The workspaces/guilds linked to this org, offered for the team id fields.
    linked = [
        {"provider": provider, "id": team_id, "name": name}
        for (provider, team_id), name in sorted(linked_teams(org.pk).items())
    ]
    return {"form": form, "trigger": trigger, "linked_teams": linked}


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
    return render_page(request, "triggers/trigger_form.html", _form_context(org, form, None), status=status)


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
    return render_page(request, "triggers/trigger_form.html", _form_context(org, form, trigger), status=status)


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


def _input_files(request) -> list[StoredFile]:
    """The files the Run form offers as input: the org's available ones, newest first."""
    if not request.principal.has(Perm.FILES_READ):
        return []
    files = StoredFile.objects.filter(status=FileStatus.AVAILABLE).order_by("-created_at")
    return list(request.principal.restrict(files).only("id", "file_name")[:100])


def _trigger_page(request, trigger: Trigger, run_form: RunForm, *, status: int = 200):
    linked = linked_teams(trigger.org_id)
    recent = request.principal.restrict(Job.objects.filter(trigger=trigger)).order_by("-created_at")[:10]
    return render_page(
        request,
        "triggers/trigger_detail.html",
        {
            "trigger": trigger,
            "run_form": run_form,
            "recent_jobs": recent,
            "snippet": github_actions_snippet(trigger),
            "diagnosis": queue_diagnostics.labels_diagnosis(org_id=trigger.org_id, labels=trigger.agent_labels or []),
            "queued_count": request.principal.restrict(
                Job.objects.filter(trigger=trigger, status=JobStatus.QUEUED)
            ).count(),
            "run_url": absolute_url("trigger-run", trigger_id=trigger.pk),
            "chat": chat_connection(trigger, linked),
            "notify": notify_connection(trigger, linked),
        },
        status=status,
    )


@org_page(Perm.TRIGGERS_READ)
@require_GET
def trigger_detail(request, org, trigger_id: uuid.UUID):
    trigger = page_object(request.principal.restrict(Trigger.objects.select_related("org")), trigger_id)
    return _trigger_page(request, trigger, RunForm(trigger=trigger, files=_input_files(request)))


@org_page(Perm.TRIGGERS_RUN)
@require_POST
def trigger_run(request, org, trigger_id: uuid.UUID):
    """The Run form: RunInput and `trigger_run`, as the run endpoint, with source `ui`."""
    trigger = page_object(request.principal.restrict(Trigger.objects.select_related("org")), trigger_id)
    form = RunForm(request.POST, trigger=trigger, files=_input_files(request))
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
