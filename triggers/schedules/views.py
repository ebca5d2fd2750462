"""Schedule pages: the trigger page's list (`schedule_rows`), and add, edit, enable/disable, delete.

Every write goes through the API's ScheduleInput and the services, as the JSON API does.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from orgs.pages import add_api_errors, call_service, org_page, page_object, render_page
from orgs.permissions import Perm

from ..models import Trigger
from . import services
from .api import ScheduleInput
from .forms import ScheduleForm
from .models import Schedule


def schedule_rows(request, trigger: Trigger) -> list[dict]:
    """The trigger page's schedules: each with its plain reading and next fire times (UTC; the
    browser shows them in its own timezone, ui.js)."""
    schedules = request.principal.restrict(Schedule.objects.filter(trigger=trigger)).select_related("last_job")
    return [
        {
            "schedule": schedule,
            "description": services.schedule_description(schedule),
            "next_fire_times": services.schedule_next_fire_times(schedule),
        }
        for schedule in schedules
    ]


def _trigger(request, trigger_id: uuid.UUID) -> Trigger:
    return page_object(request.principal.restrict(Trigger.objects.select_related("org")), trigger_id)


def _schedule(request, trigger: Trigger, schedule_id: uuid.UUID) -> Schedule:
    return page_object(request.principal.restrict(Schedule.objects.filter(trigger=trigger)), schedule_id)


def _to_trigger_page(org, trigger: Trigger):
    response = redirect("trigger-detail", org_slug=org.slug, trigger_id=trigger.pk)
    response["Location"] += "#schedules"
    return response


def _form_page(request, trigger: Trigger, form: ScheduleForm, schedule: Schedule | None):
    status = 400 if form.is_bound else 200
    context = {"trigger": trigger, "form": form, "schedule": schedule}
    return render_page(request, "triggers/schedule_form.html", context, status=status)


def _valid_input(form: ScheduleForm) -> ScheduleInput | None:
    if not form.is_valid():
        return None
    data = ScheduleInput(data=form.wire_data())
    if not data.is_valid():
        add_api_errors(form, data.errors)
        return None
    return data


@org_page(Perm.TRIGGERS_MANAGE)
def schedule_new(request, org, trigger_id: uuid.UUID):
    trigger = _trigger(request, trigger_id)
    form = ScheduleForm(default_ref=trigger.default_ref)
    if request.method == "POST":
        form = ScheduleForm(request.POST, default_ref=trigger.default_ref)
        data = _valid_input(form)
        if data is not None:
            created = call_service(
                form,
                services.schedule_create,
                trigger=trigger,
                actor=request.principal.actor,
                **data.service_kwargs(),
            )
            if created is not None:
                messages.success(request, f"Schedule {created.cron} ({created.timezone}) added.")
                return _to_trigger_page(org, trigger)
    return _form_page(request, trigger, form, None)


@org_page(Perm.TRIGGERS_MANAGE)
def schedule_edit(request, org, trigger_id: uuid.UUID, schedule_id: uuid.UUID):
    trigger = _trigger(request, trigger_id)
    schedule = _schedule(request, trigger, schedule_id)
    form = ScheduleForm(initial=ScheduleForm.initial_for(schedule), default_ref=trigger.default_ref)
    if request.method == "POST":
        form = ScheduleForm(request.POST, default_ref=trigger.default_ref)
        data = _valid_input(form)
        if data is not None:
            saved = call_service(
                form,
                services.schedule_update,
                schedule=schedule,
                actor=request.principal.actor,
                **data.service_kwargs(),
            )
            if saved is not None:
                messages.success(request, f"Schedule {saved.cron} ({saved.timezone}) saved.")
                return _to_trigger_page(org, trigger)
    return _form_page(request, trigger, form, schedule)


@org_page(Perm.TRIGGERS_MANAGE)
@require_POST
def schedule_toggle(request, org, trigger_id: uuid.UUID, schedule_id: uuid.UUID):
    trigger = _trigger(request, trigger_id)
    schedule = _schedule(request, trigger, schedule_id)
    schedule = services.schedule_update(schedule=schedule, actor=request.principal.actor, enabled=not schedule.enabled)
    state = "enabled" if schedule.enabled else "disabled"
    messages.success(request, f"Schedule {schedule.cron} ({schedule.timezone}) {state}.")
    return _to_trigger_page(org, trigger)


@org_page(Perm.TRIGGERS_MANAGE)
@require_POST
def schedule_delete(request, org, trigger_id: uuid.UUID, schedule_id: uuid.UUID):
    trigger = _trigger(request, trigger_id)
    schedule = _schedule(request, trigger, schedule_id)
    services.schedule_delete(schedule=schedule, actor=request.principal.actor)
    messages.success(request, f"Schedule {schedule.cron} ({schedule.timezone}) deleted.")
    return _to_trigger_page(org, trigger)
