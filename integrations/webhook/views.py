"""The trigger page's "Send test" button (same service as the API)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from deplite.api.errors import DepliteError
from orgs.pages import org_page, page_object
from orgs.permissions import Perm
from triggers.models import Trigger

from . import services


@org_page(Perm.TRIGGERS_MANAGE)
@require_POST
def notify_test(request, org, trigger_id: uuid.UUID):
    trigger = page_object(request.principal.restrict(Trigger.objects.select_related("org")), trigger_id)
    try:
        result = services.webhook_test_send(trigger=trigger, actor=request.principal.actor)
    except DepliteError as exc:
        messages.error(request, exc.message)
    else:
        if result.delivered:
            again = " The endpoint is enabled again." if result.reenabled else ""
            messages.success(
                request,
                f"Test event delivered: the endpoint answered {result.status} in {result.elapsed_ms} ms.{again}",
            )
        else:
            answered = f"the endpoint answered {result.status}" if result.status else "no answer"
            messages.error(request, f"Test event not delivered ({answered}): {result.error}")
    return redirect("trigger-detail", org_slug=org.slug, trigger_id=trigger.pk)
