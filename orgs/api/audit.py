"""An org's audit log, for admins."""

from __future__ import annotations

from rest_framework import mixins, serializers

from ..models import AuditEvent
from ..permissions import Perm
from ..scoping import OrgScopedViewSet


class AuditEventOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "actor_kind",
            "actor_id",
            "actor_label",
            "action",
            "target_type",
            "target_id",
            "data",
            "ip",
            "created_at",
        ]


class AuditEventViewSet(OrgScopedViewSet, mixins.ListModelMixin):
    """`GET /api/orgs/<orgId>/audit` (admins)."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventOutput
    permission_map = {"list": Perm.AUDIT_READ}
    filterset_fields = ["action", "actor_kind"]
