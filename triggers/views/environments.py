"""Environment pages: the list (with the New environment form), an environment's page (current
deployment, queue, lock, history, rollback, rules), and the job page's Approve / Reject.

Thin views: the forms shape input, `triggers.environments.services` decides and audits, and every
query goes through `request.principal.restrict(...)` (another org's environment is a 404)."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from orgs.models import Membership, Role
from orgs.pages import call_service, org_page, render_page
from orgs.permissions import Perm

from ..environments import services as env_services
from ..environments.forms import DecisionForm, EnvironmentForm, LockForm
from ..environments.listing import environment_rows
from ..environments.selectors import environment_deployments_succeeded, environment_queue
from ..models import ApprovalDecision, Environment, JobSource
from ..templatetags.jobs import job_ref_cell
from .jobs import _job, _jobs_context

_ADMIN_ROLES = (Role.OWNER, Role.ADMIN)
# The environment page's history, a page at a time (older pages, or the jobs list filtered by the
# environment, for more): its newest deploys, as GitHub's environment page lists them.
HISTORY_PER_PAGE = 20


def _environment(request, name: str) -> Environment:
    environment = request.principal.restrict(Environment.objects.select_related("org").filter(name=name)).first()
    if environment is None:
        raise Http404("Environment not found")
    return environment


def _members(org) -> list[tuple[int, str]]:
    """The org's members, for the named-approvers choice."""
    return list(Membership.objects.filter(org=org).order_by("user__email").values_list("user_id", "user__email"))


def _list_page(request, form: EnvironmentForm, *, status: int = 200):
    context = {
        "rows": environment_rows(request.principal.restrict(Environment.objects.all())),
        "form": form,
        "can_manage": request.principal.has(Perm.TRIGGERS_MANAGE),
    }
    return render_page(request, "triggers/environments_list.html", context, status=status)


@org_page(Perm.TRIGGERS_READ)
def environments_list(request, org):
    """`/orgs/<slug>/environments/`; a POST is the New environment form (owners and admins)."""
    if request.method != "POST":
        return _list_page(request, EnvironmentForm(members=_members(org)))
    if not request.principal.has(Perm.TRIGGERS_MANAGE):
        return HttpResponseForbidden("Only owners and admins may create environments.")
    form = EnvironmentForm(request.POST, members=_members(org))
    if form.is_valid():
        environment = call_service(
            form,
            env_services.environment_create,
            field_for={"environment_exists": "name"},
            org=org,
            actor=request.principal.actor,
            **form.service_kwargs(),
        )
        if environment is not None:
            messages.success(request, f"Environment {environment.name} created.")
            return redirect("environment-detail", org_slug=org.slug, environment_name=environment.name)
    return _list_page(request, form, status=400)


def _refusal_form() -> forms.Form:
    """A bound, valid, empty form: where `call_service` puts a refusal of a button with no fields."""
    form = forms.Form(data={})
    form.is_valid()
    return form


def _may_unlock(request, environment: Environment) -> bool:
    return environment.locked_at is not None and (
        environment.locked_by_id == request.user.pk or request.principal.role in _ADMIN_ROLES
    )


def _detail_page(
    request, environment: Environment, *, rules_form=None, lock_form=None, rollback_error: str = "", status: int = 200
):
    principal = request.principal
    # The current deployment and the one a rollback would deploy again.
    current, previous = (list(environment_deployments_succeeded(environment)[:2]) + [None, None])[:2]
    can_manage = principal.has(Perm.TRIGGERS_MANAGE)
    if rules_form is None and can_manage:
        rules_form = EnvironmentForm(
            initial=EnvironmentForm.initial_for(environment), members=_members(environment.org), creating=False
        )
    history = _jobs_context(request, environment=environment.name, per_page=HISTORY_PER_PAGE)
    context = {
        "environment": environment,
        "current": current,
        "current_ref": job_ref_cell(current) if current else None,
        "previous": previous,
        "previous_ref": job_ref_cell(previous) if previous else None,
        "queue": environment_queue(environment),
        "locked": environment.is_locked(),
        "can_run": principal.has(Perm.TRIGGERS_RUN),
        # Anyone who may run may lock a free environment; its holder may change the lock.
        "can_lock": principal.has(Perm.TRIGGERS_RUN)
        and (not environment.is_locked() or environment.locked_by_id == request.user.pk),
        "can_unlock": _may_unlock(request, environment),
        "lock_form": lock_form or LockForm(),
        "can_manage": can_manage,
        "rules_form": rules_form,
        "approvers": env_services.approvers_description(environment),
        "rollback_error": rollback_error,
        **history,
    }
    return render_page(request, "triggers/environment_detail.html", context, status=status)


@org_page(Perm.TRIGGERS_READ)
@require_GET
def environment_detail(request, org, environment_name: str):
    return _detail_page(request, _environment(request, environment_name))


@org_page(Perm.TRIGGERS_READ)
@require_GET
def environment_queue_live(request, org, environment_name: str):
    """The environment page's poll: its queue as it is now (an htmx fragment)."""
    environment = _environment(request, environment_name)
    context = {"environment": environment, "queue": environment_queue(environment)}
    return render_page(request, "triggers/_environment_queue.html", context)


@org_page(Perm.TRIGGERS_MANAGE)
@require_POST
def environment_edit(request, org, environment_name: str):
    """The rules form (owners and admins; a person's act, as every page's)."""
    environment = _environment(request, environment_name)
    form = EnvironmentForm(request.POST, members=_members(org), creating=False)
    if form.is_valid():
        saved = call_service(
            form,
            env_services.environment_update,
            environment=environment,
            actor=request.principal.actor,
            **form.service_kwargs(),
        )
        if saved is not None:
            messages.success(request, f"Rules of {saved.name} saved.")
            return redirect("environment-detail", org_slug=org.slug, environment_name=saved.name)
    return _detail_page(request, environment, rules_form=form, status=400)


@org_page(Perm.TRIGGERS_MANAGE)
@require_POST
def environment_delete(request, org, environment_name: str):
    """Delete (owners and admins): refused while a trigger deploys to it or a job of it is live."""
    environment = _environment(request, environment_name)
    form = _refusal_form()
    call_service(form, env_services.environment_delete, environment=environment, actor=request.principal.actor)
    if form.errors:
        messages.error(request, " ".join(form.non_field_errors()))
        return redirect("environment-detail", org_slug=org.slug, environment_name=environment.name)
    messages.success(request, f"Environment {environment.name} deleted. Its jobs are kept.")
    return redirect("environment-list", org_slug=org.slug)


@org_page(Perm.TRIGGERS_RUN)
@require_POST
def environment_lock(request, org, environment_name: str):
    environment = _environment(request, environment_name)
    form = LockForm(request.POST)
    if form.is_valid():
        locked = call_service(
            form,
            env_services.environment_lock,
            environment=environment,
            actor=request.principal.actor,
            reason=form.cleaned_data["reason"],
            expires_at=form.cleaned_data["expires_at"],
        )
        if locked is not None:
            messages.success(request, f"{locked.name} is {locked.lock_description}.")
            return redirect("environment-detail", org_slug=org.slug, environment_name=locked.name)
    return _detail_page(request, environment, lock_form=form, status=400)


@org_page(Perm.TRIGGERS_RUN)
@require_POST
def environment_unlock(request, org, environment_name: str):
    environment = _environment(request, environment_name)
    form = _refusal_form()
    unlocked = call_service(
        form,
        env_services.environment_unlock,
        environment=environment,
        actor=request.principal.actor,
        role=request.principal.role,
    )
    if unlocked is None:
        messages.error(request, " ".join(form.non_field_errors()))
        return _detail_page(request, environment, status=403)
    messages.success(request, f"{unlocked.name} unlocked.")
    return redirect("environment-detail", org_slug=org.slug, environment_name=unlocked.name)


@org_page(Perm.TRIGGERS_RUN)
@require_POST
def environment_rollback(request, org, environment_name: str):
    """Rollback, confirmed on the page (its form sits inside a <details> that says what it does)."""
    environment = _environment(request, environment_name)
    form = _refusal_form()
    result = call_service(
        form,
        env_services.environment_rollback,
        environment=environment,
        actor=request.principal.actor,
        source=JobSource.UI,
    )
    if result is None or result.job_id is None:
        error = " ".join(form.non_field_errors()) or "The rollback was not started."
        return _detail_page(request, environment, rollback_error=error, status=409)
    messages.success(request, f"Job #{result.body['shortId']} started: a rollback of {environment.name}.")
    return redirect("job-detail", org_slug=org.slug, job_id=result.job_id)


def _job_decide(request, org, job_id: uuid.UUID, decision: str):
    """Approve / Reject: whoever may run triggers (as the API); the environment's rule decides who
    among them may approve (env_services.may_approve)."""
    job = _job(request, job_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("job-detail", org_slug=org.slug, job_id=job.pk)
    decided = call_service(
        form,
        env_services.job_decide,
        job=job,
        actor=request.principal.actor,
        decision=decision,
        comment=form.cleaned_data["comment"],
    )
    if decided is None:
        messages.error(request, " ".join(form.non_field_errors()))
    else:
        verb = "approved" if decision == ApprovalDecision.APPROVED else "rejected"
        messages.success(request, f"You {verb} job #{decided.short_id}.")
    return redirect("job-detail", org_slug=org.slug, job_id=job.pk)


@org_page(Perm.TRIGGERS_RUN)
@require_POST
def job_approve(request, org, job_id: uuid.UUID):
    return _job_decide(request, org, job_id, ApprovalDecision.APPROVED)


@org_page(Perm.TRIGGERS_RUN)
@require_POST
def job_reject(request, org, job_id: uuid.UUID):
    return _job_decide(request, org, job_id, ApprovalDecision.REJECTED)
