"""Trigger pages: the list, create, edit, delete, a trigger's page and its Run form."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from deplite.errors import DepliteError
from deplite.links import absolute_url
from orgs.pages import add_api_errors, call_service, org_page, page_object, pop_secret, render_page, stash_secret
from orgs.permissions import Perm
from storage.models import FileStatus, StorageBinding, StoredFile

from .. import queue_diagnostics, services
from ..api import IDEMPOTENCY_KEY_RE, RunInput, TriggerInput
from ..chat_links import chat_connection, notify_connection
from ..extensions import linked_teams
from ..forms import RunForm, TriggerForm
from ..models import Environment, Job, JobSource, JobStatus, Trigger
from ..schedules.views import schedule_rows


@org_page(Perm.TRIGGERS_READ)
@require_GET
def triggers_list(request, org):
    # The last-job pointer the run service keeps: a join, not a look through every job.
    triggers = (
        request.principal.restrict(Trigger.objects.all())
        .select_related("last_job", "environment")
        .order_by("name", "created_at")
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
    values = dict(data.validated_data)
    # The Environment select, by name as the API names it (the service finds it among the org's).
    values.setdefault("environment_name", form.cleaned_data.get("environment") or None)
    had_secret = trigger is not None and bool(trigger.notify_secret)
    if trigger is None:
        saved = call_service(form, services.trigger_create, org=request.principal.org, actor=actor, **values)
    else:
        saved = call_service(form, services.trigger_update, trigger=trigger, actor=actor, **values)
    if saved is not None and saved.notify_secret and not had_secret:
        # A new webhook target's signing secret: shown once, on the trigger's page after the redirect.
        stash_secret(request, _NEW_SECRET_SESSION_KEY, obj_id=saved.pk, secret=saved.notify_secret)
    return saved


_NEW_SECRET_SESSION_KEY = "deplite.notify_secret"  # noqa: S105 (a session key name)


def _bindings(org) -> list[tuple[uuid.UUID, str]]:
    """The org's storage bindings, for the trigger form's output binding."""
    return list(StorageBinding.objects.filter(org=org).order_by("name").values_list("pk", "name"))


def _choices(org) -> dict:
    """What the trigger form offers: the org's storage bindings and environments."""
    environments = Environment.objects.filter(org=org).order_by("name").values_list("name", flat=True)
    return {"bindings": _bindings(org), "environments": list(environments)}


def _form_context(org, form: TriggerForm, trigger: Trigger | None) -> dict:
    # The workspaces/guilds linked to this org, offered for the team id fields.
    linked = [
        {"provider": provider, "id": team_id, "name": name}
        for (provider, team_id), name in sorted(linked_teams(org.pk).items())
    ]
    return {"form": form, "trigger": trigger, "linked_teams": linked}


@org_page(Perm.TRIGGERS_MANAGE)
def trigger_new(request, org):
    form = TriggerForm(**_choices(org))
    if request.method == "POST":
        form = TriggerForm(request.POST, **_choices(org))
        trigger = _save_trigger(request, form, None)
        if trigger is not None:
            messages.success(request, f"Trigger {trigger.name} created.")
            return redirect("trigger-detail", org_slug=org.slug, trigger_id=trigger.pk)
    status = 400 if form.is_bound else 200
    return render_page(request, "triggers/trigger_form.html", _form_context(org, form, None), status=status)


@org_page(Perm.TRIGGERS_MANAGE)
def trigger_edit(request, org, trigger_id: uuid.UUID):
    trigger = page_object(request.principal.restrict(Trigger.objects.select_related("org")), trigger_id)
    form = TriggerForm(initial=TriggerForm.initial_for(trigger), **_choices(org))
    if request.method == "POST":
        form = TriggerForm(request.POST, **_choices(org))
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
        # commitTime: lead time from commit to deploy (insights); blank on a manual dispatch (no head commit).
        '            -d \'{ "ref": "${{ github.sha }}", "commitTime": "${{ github.event.head_commit.timestamp }}",\n'
        '                  "params": { "actor": "${{ github.actor }}", "repo": "${{ github.repository }}" } }\'\n'
    )


def _input_files(request) -> list[StoredFile]:
    """The files the Run form offers as input: the org's available ones, newest first."""
    if not request.principal.has(Perm.FILES_READ):
        return []
    files = StoredFile.objects.filter(status=FileStatus.AVAILABLE).order_by("-created_at")
    return list(request.principal.restrict(files).only("id", "file_name")[:100])


def _trigger_page(request, trigger: Trigger, run_form: RunForm, *, status: int = 200):
    linked = linked_teams(trigger.org_id)
    stashed = pop_secret(
        request, _NEW_SECRET_SESSION_KEY, request.principal.restrict(Trigger.objects.filter(pk=trigger.pk))
    )
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
            "schedules": schedule_rows(request, trigger),
            "new_notify_secret": stashed[1] if stashed else None,
        },
        status=status,
    )


@org_page(Perm.TRIGGERS_READ)
@require_GET
def trigger_detail(request, org, trigger_id: uuid.UUID):
    trigger = page_object(request.principal.restrict(Trigger.objects.select_related("org", "environment")), trigger_id)
    return _trigger_page(request, trigger, RunForm(trigger=trigger, files=_input_files(request)))


@org_page(Perm.TRIGGERS_MANAGE)
@require_POST
def trigger_rotate_notify_secret(request, org, trigger_id: uuid.UUID):
    trigger = page_object(request.principal.restrict(Trigger.objects.select_related("org")), trigger_id)
    try:
        trigger, secret = services.trigger_notify_secret_rotate(trigger=trigger, actor=request.principal.actor)
    except DepliteError as exc:
        messages.error(request, exc.message)
    else:
        stash_secret(request, _NEW_SECRET_SESSION_KEY, obj_id=trigger.pk, secret=secret)
        messages.success(request, "New webhook signing secret: the old one no longer signs deliveries.")
    return redirect("trigger-detail", org_slug=org.slug, trigger_id=trigger.pk)


@org_page(Perm.TRIGGERS_RUN)
@require_POST
def trigger_run(request, org, trigger_id: uuid.UUID):
    """The Run form: RunInput and `trigger_run`, as the run endpoint, with source `ui`."""
    trigger = page_object(request.principal.restrict(Trigger.objects.select_related("org", "environment")), trigger_id)
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
                state = {"pending_approval": "waiting for approval", "waiting": "waiting its turn"}
                messages.success(
                    request, f"Job #{result.body['shortId']} {state.get(result.body['status'], 'queued')}."
                )
            return redirect("job-detail", org_slug=org.slug, job_id=result.job_id)
        if result is not None:
            form.add_error(None, "This form was already sent; reload the page to run again.")
    return _trigger_page(request, trigger, form, status=400)
