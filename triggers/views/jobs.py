"""Job pages: the jobs list (and its poll), a job's page (and its live poll), its raw log, cancel and
re-run."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST
from rest_framework.request import Request

from deplite.api.errors import DepliteError
from deplite.api.pagination import KeysetPagination
from orgs.pages import add_api_errors, call_service, org_page, page_object, render_page
from orgs.permissions import Perm
from storage.models import FileStatus

from .. import outputs, queue_diagnostics, services
from ..api import JobFilter
from ..api.jobs import RerunInput
from ..environments.forms import DecisionForm
from ..forms import RerunForm
from ..models import Environment, Job, JobFileDirection, JobLogChunk, JobSource, JobStatus, JobStep, Trigger
from .job_environment import job_environment_context

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
    "environment_name",
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


def _jobs_context(request, *, environment: str | None = None, per_page: int = JOBS_PER_PAGE) -> dict:
    """The jobs list's page of rows; `environment`: an environment page's history (its jobs only), `per_page`
    rows at a time (its poll asks for as many)."""
    jobs = (
        request.principal.restrict(Job.objects.select_related("trigger"))
        .only(*JOB_ROW_FIELDS)
        .order_by("-created_at", "-id")
    )
    # An environment page's history: its jobs, by the name copied onto each (as the API's
    # `?environment=` filter, which the jobs list and the rows' poll use).
    rows_query = request.GET.copy()
    if environment:
        jobs = jobs.filter(environment_name=environment)
        rows_query["environment"] = environment
    if per_page != JOBS_PER_PAGE:
        rows_query["pageSize"] = str(per_page)
    # The API's own filter: same parameter names (?trigger=&status=&q=) and rules.
    filterset = JobFilter(request.GET, queryset=jobs)
    filtered = filterset.qs if filterset.is_valid() else jobs.none()
    # The API's keyset pages: no COUNT(*), and an old page costs what the first one does.
    paginator = KeysetPagination()
    paginator.page_size = per_page
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
        "selected_environment": environment or request.GET.get("environment", ""),
        "search": request.GET.get("q", ""),
        "rows_query": rows_query.urlencode(),
        # The newest page follows new jobs; any page follows its queued and running ones.
        "polling": active or "cursor" not in request.GET,
        "poll_every": "2s" if active else "10s",
    }


@org_page(Perm.JOBS_READ)
@require_GET
def jobs_list(request, org):
    triggers = request.principal.restrict(Trigger.objects.all()).order_by("name")
    environments = request.principal.restrict(Environment.objects.all()).order_by("name").values_list("name", flat=True)
    context = {
        **_jobs_context(request),
        "triggers": triggers,
        "environments": list(environments),
        "statuses": JobStatus.choices,
    }
    return render_page(request, "triggers/jobs_list.html", context)


@org_page(Perm.JOBS_READ)
@require_GET
def jobs_rows(request, org):
    """The jobs list's poll: its rows as they are now (an htmx fragment)."""
    return render_page(request, "triggers/_jobs_rows.html", _jobs_context(request))


def _job(request, job_id) -> Job:
    return page_object(request.principal.restrict(Job.objects.select_related("org", "environment")), job_id)


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
        **job_environment_context(request, job),
    }


@org_page(Perm.JOBS_READ)
@require_GET
def job_detail(request, org, job_id: uuid.UUID):
    """`/orgs/<slug>/jobs/<id>`: the page the run endpoint's `url` and notifications link to."""
    job = _job(request, job_id)
    return _job_page(request, job, RerunForm.for_job(job, **_rerun_choices(job)))


def _rerun_choices(job: Job) -> dict:
    """What the Re-run form offers besides ref and params: the job's outputs for its input-file params."""
    available = [
        (str(link.file_id), link.file.file_name)
        for link in outputs.job_files(job)
        if link.direction == JobFileDirection.OUTPUT and link.file.status == FileStatus.AVAILABLE
    ]
    return {"file_params": [f["param"] for f in job.input_files or []], "outputs": available}


def _job_page(request, job: Job, rerun_form: RerunForm, *, status: int = 200):
    context = _live_context(request, job, after=0, limit=LOG_CHUNKS_ON_PAGE)
    context["rerun_form"] = rerun_form
    context["decision_form"] = DecisionForm()
    context["can_rerun"] = request.principal.has(Perm.TRIGGERS_RUN) and job.trigger_id is not None
    context["rerun_of"] = (
        request.principal.restrict(Job.objects.filter(pk=job.rerun_of_id)).only("id", "short_id").first()
        if job.rerun_of_id
        else None
    )
    context["reruns"] = request.principal.restrict(job.reruns.all()).only("id", "short_id", "status")[:10]
    context["files"] = outputs.job_files(job)
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
    form = RerunForm(request.POST, **_rerun_choices(job))
    if form.is_valid():
        # A ref left empty means the job's own, as in the API.
        data = RerunInput(data={"ref": form.cleaned_data["ref"] or None, "params": form.rerun_params()})
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
