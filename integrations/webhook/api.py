"""`POST /api/orgs/<orgId>/triggers/<id>/notify-test`: send the trigger's webhook a sample event now."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet
from triggers.models import Trigger

from . import services


class TestDeliveryOutput(serializers.Serializer):
    delivered = serializers.BooleanField(help_text="The endpoint answered 2xx.")
    status = serializers.IntegerField(
        allow_null=True, help_text="The endpoint's HTTP status; null if it never answered."
    )
    elapsed_ms = serializers.IntegerField(allow_null=True)
    error_code = serializers.CharField(help_text="As on deliveries: url_not_allowed, timeout, http_500, gone, …")
    error = serializers.CharField()
    reenabled = serializers.BooleanField(help_text="The target had been disabled (410) and this success enabled it.")


class WebhookTestViewSet(OrgScopedViewSet):
    queryset = Trigger.objects.all()
    permission_map = {"notify_test": Perm.TRIGGERS_MANAGE}

    @extend_schema(request=None, responses={200: TestDeliveryOutput})
    def notify_test(self, request, org_id, pk):
        """POST a sample `test` event, signed like a result, to the trigger's webhook (bounded time) and
        report the endpoint's answer. 409 `not_a_webhook_target` for a trigger without one."""
        result = services.webhook_test_send(trigger=self.get_object(), actor=self.actor)
        return Response(TestDeliveryOutput(result).data)
