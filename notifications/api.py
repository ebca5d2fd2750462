"""`POST /api/orgs/<orgId>/jobs/<jobId>/notifications/<deliveryId>/retry` (owners and admins)."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from integrations import outbox
from integrations.models import OutboxMessage
from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet
from triggers.api.jobs import JobNotificationOutput as DeliveryOutput  # one shape, the job detail's

from . import selectors


class DeliveryViewSet(OrgScopedViewSet):
    queryset = OutboxMessage.objects.all()
    permission_map = {"retry": Perm.INTEGRATIONS_MANAGE}

    def safely_get_queryset(self, queryset):
        # The delivery must belong to the job named in the URL.
        return queryset.filter(job_id=_uuid_or_none(self.kwargs.get("job_id"))).select_related("job", "job__org")

    @extend_schema(request=None, responses={202: DeliveryOutput})
    def retry(self, request, org_id, job_id, pk):
        row = outbox.message_retry(message=self.get_object(), actor=self.actor)
        return Response(selectors.delivery_payload(row), status=202)


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
