"""The job page's "Retry" button for a failed delivery (same service as the API)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from deplite.api.errors import DepliteError
from integrations import outbox
from integrations.models import OutboxMessage
from orgs.pages import org_page, page_object
from orgs.permissions import Perm


@org_page(Perm.INTEGRATIONS_MANAGE)
@require_POST
def delivery_retry(request, org, job_id: uuid.UUID, delivery_id: uuid.UUID):
    row = page_object(request.principal.restrict(OutboxMessage.objects.filter(job_id=job_id)), delivery_id)
    try:
        outbox.message_retry(message=row, actor=request.principal.actor)
    except DepliteError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Notification to {row.get_provider_display()} {row.channel} queued again.")
    return redirect("job-detail", org_slug=org.slug, job_id=job_id)
