"""Web pages for jobs. Pages resolve the org with the same `principal_for_org` as the API."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from deplite.api.errors import NotFound
from orgs.permissions import Perm
from orgs.scoping import principal_for_org

from .models import Job, JobLogChunk

LOG_CHUNKS_ON_PAGE = 2000


@login_required
def job_detail(request, org_slug: str, job_id: uuid.UUID):
    """`/orgs/<slug>/jobs/<id>`: the page the run endpoint's `url` and notifications link to."""
    try:
        principal = principal_for_org(request, org_slug)
    except NotFound:
        raise Http404("Job not found.") from None
    if not principal.has(Perm.JOBS_READ):
        raise Http404("Job not found.")
    job = principal.restrict(Job.objects.select_related("org")).filter(pk=job_id).first()
    if job is None:
        raise Http404("Job not found.")
    chunks = JobLogChunk.objects.filter(job=job).order_by("seq")[:LOG_CHUNKS_ON_PAGE]
    return render(
        request,
        "triggers/job_detail.html",
        {
            "job": job,
            "steps": job.steps.order_by("index"),
            "log": "".join(c.data for c in chunks),
            "log_more": job.log_seq > LOG_CHUNKS_ON_PAGE,
        },
    )
