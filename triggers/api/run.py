"""The run endpoint: `POST /triggers/<id>/run` and `POST /api/triggers/<id>/run`."""

from __future__ import annotations

import re
import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from deplite.api.errors import Forbidden, NotFound, ValidationFailed
from deplite.api.fields import ObjectRuleField, TextRuleField
from orgs.permissions import Perm
from orgs.scoping import principal_for_org

from .. import rules, services
from ..models import JobSource, Trigger


class RunInput(serializers.Serializer):
    """`{"ref": …, "params": {…}}`: every bad param is named (`params.KEY`), with a bad ref too."""

    ref = TextRuleField(rules.clean_ref, required=False, allow_null=True)
    params = ObjectRuleField(rules.clean_params, required=False, allow_null=True)


class RunOutput(serializers.Serializer):
    job_id = serializers.UUIDField()
    short_id = serializers.CharField()
    status = serializers.CharField()
    ref = serializers.CharField()
    params = serializers.DictField(child=serializers.CharField())
    url = serializers.URLField()


IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")


class TriggerRunView(APIView):
    """`POST /triggers/<id>/run` and `POST /api/triggers/<id>/run`: queue a job.

    The URL names no org: the trigger's org is the one the caller must belong to (or
    whose token lists this trigger). Unknown and foreign triggers are both a 404.
    """

    @extend_schema(
        request=RunInput,
        responses={202: RunOutput},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
    )
    def post(self, request, trigger_id: str):
        try:
            pk = uuid.UUID(trigger_id)
        except ValueError:
            raise NotFound("Trigger not found.") from None
        trigger = Trigger.objects.select_related("org").filter(pk=pk).first()
        if trigger is None:
            raise NotFound("Trigger not found.")
        principal = principal_for_org(request, trigger.org)
        if not principal.restrict(Trigger.objects.filter(pk=pk)).exists():
            raise NotFound("Trigger not found.")
        if not principal.has(Perm.TRIGGERS_RUN):
            raise Forbidden("This caller may not run triggers.")
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY_RE.match(key):
            raise ValidationFailed("Idempotency-Key: 1–255 visible ASCII characters.", code="invalid_idempotency_key")
        data = RunInput(data=request.data)
        data.is_valid(raise_exception=True)
        ref, params = data.validated_data.get("ref"), data.validated_data.get("params") or {}
        result = services.trigger_run(
            trigger=trigger,
            actor=principal.actor,
            source=JobSource.API if request.path.startswith("/api/") else JobSource.WEBHOOK,
            ref=ref,
            params=params,
            idempotency_key=key,
        )
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        if result.job_id is not None:
            headers["Location"] = result.body.get("url", "")
        return Response(result.body, status=result.status, headers=headers)
