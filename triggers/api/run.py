"""The run endpoint: `POST /triggers/<id>/run` and `POST /api/triggers/<id>/run`."""

from __future__ import annotations

import re
import uuid

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from deplite import logs
from deplite.api.errors import Forbidden, NotFound, ValidationFailed
from deplite.api.fields import StrictCharField, schema_pattern
from deplite.json_rows import instance_from_json_row, json_row_sql
from orgs.models import ApiToken
from orgs.permissions import Perm
from orgs.scoping import principal_for_org

from .. import rules, services
from ..models import IdempotencyKey, JobSource, Trigger
from .fields import CommitTimeField, ParamsField, RefField


class RunInput(serializers.Serializer):
    """`{"ref": …, "commitTime": …, "params": {…}}`: every bad param is named (`params.KEY`), with a bad
    ref or commit time too."""

    ref = RefField(rules.clean_ref, required=False, allow_null=True)
    commit_time = CommitTimeField(rules.clean_commit_time, required=False, allow_null=True)
    params = ParamsField(rules.clean_params, required=False, allow_null=True)


class RunOutput(serializers.Serializer):
    job_id = serializers.UUIDField()
    short_id = StrictCharField()
    status = StrictCharField()
    ref = StrictCharField()
    params = serializers.DictField(child=StrictCharField())
    url = serializers.URLField()


IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}\Z")


class TriggerRunView(APIView):
    """`POST /triggers/<id>/run` and `POST /api/triggers/<id>/run`: queue a job.

    The URL names no org: the trigger's org is the one the caller must belong to (or
    whose token lists this trigger). Unknown and foreign triggers are both a 404.
    """

    @extend_schema(
        request=RunInput,
        responses={
            202: RunOutput,
            409: OpenApiResponse(
                description="`environment_locked`: the trigger's environment is locked by someone else "
                "(`details`: environment, lockedBy, reason, lockedAt, expiresAt); no job is made. "
                "Also `trigger_disabled`."
            ),
            422: OpenApiResponse(
                description="`ref_not_allowed`: the ref matches none of the environment's allowedRefs "
                "(`details`: environment, ref, allowedRefs); no job is made. Also `idempotency_key_reused`: "
                "the Idempotency-Key was used with another body."
            ),
        },
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "pattern": schema_pattern(IDEMPOTENCY_KEY_RE)},
                OpenApiParameter.HEADER,
                required=False,
                description="Repeat a run safely: the same key (within 24 h) answers the first run's job.",
            )
        ],
    )
    def post(self, request, trigger_id: str):
        trigger = self._trigger(request, trigger_id)
        logs.bind(org=trigger.org.slug)
        try:
            principal = principal_for_org(request, trigger.org)
        except NotFound:
            # Another org's caller gets the very answer an unknown trigger gets, not "Organization
            # not found", which would tell it that this trigger exists.
            raise NotFound("Trigger not found.") from None
        # The caller belongs to the trigger's org, so saying that its token's scope cannot run
        # triggers leaks nothing; "Trigger not found" sent storage-token users hunting for a typo.
        if not principal.has(Perm.TRIGGERS_RUN):
            if principal.token is not None:
                raise Forbidden(
                    f"This API token is scoped to {principal.token.scope_type}, which cannot run triggers; "
                    "use an organization token or a trigger token that lists this trigger.",
                    code="token_scope_cannot_run_triggers",
                )
            raise Forbidden("This caller may not run triggers.")
        if not principal.sees(trigger):  # a trigger token that does not list this trigger
            raise NotFound("Trigger not found.")
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
            commit_time=data.validated_data.get("commit_time"),
            idempotency_key=key,
            **self._stored_key(request),
        )
        logs.bind(job_id=result.job_id)
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        if result.job_id is not None:
            headers["Location"] = result.body.get("url", "")
        return Response(result.body, status=result.status, headers=headers)

    def token_lookup_extras(self) -> dict:
        """An API token's one query also brings the trigger of its org named in the URL and the
        stored answer to the request's Idempotency-Key (PostgreSQL): a replay costs that one query.
        Plain `row_to_json` subqueries (orgs.authentication)."""
        pk = _uuid_or_none(self.kwargs.get("trigger_id"))
        if pk is None:
            return {}
        extras = {"run_trigger": (_RUN_TRIGGER_SQL, (pk,))}
        key = self.request.headers.get("Idempotency-Key")
        if key is not None and IDEMPOTENCY_KEY_RE.match(key):
            extras["run_key"] = (_RUN_KEY_SQL, (pk, key, timezone.now() - services.IDEMPOTENCY_KEY_TTL))
        return extras

    @staticmethod
    def _stored_key(request) -> dict:
        """`stored_key` for trigger_run when the token's query already read it (else it looks it up)."""
        token = request.auth if isinstance(request.auth, ApiToken) else None
        if token is None or not hasattr(token, "run_key"):
            return {}
        row = token.run_key
        return {"stored_key": IdempotencyKey(**{name: row[name] for name in _KEY_COLUMNS}) if row else None}

    def _trigger(self, request, trigger_id: str) -> Trigger:
        token = request.auth if isinstance(request.auth, ApiToken) else None
        if token is not None and hasattr(token, "run_trigger"):
            if token.run_trigger is None:  # unknown, or another org's
                raise NotFound("Trigger not found.")
            return instance_from_json_row(Trigger, token.run_trigger, org=token.org)
        pk = _uuid_or_none(trigger_id)
        trigger = Trigger.objects.select_related("org").filter(pk=pk).first() if pk else None
        if trigger is None:
            raise NotFound("Trigger not found.")
        return trigger


_RUN_TRIGGER_SQL = json_row_sql(Trigger, where=f'r.id = %s AND r.org_id = "{ApiToken._meta.db_table}".org_id')
_RUN_KEY_SQL = json_row_sql(IdempotencyKey, where="r.trigger_id = %s AND r.key = %s AND r.created_at >= %s LIMIT 1")
# What a replay needs of a stored Idempotency-Key.
_KEY_COLUMNS = ("request_hash", "response_status", "response_body", "job_id")


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
