"""`GET/POST /api/orgs/<orgId>/environments`, `GET/PATCH/DELETE …/environments/<name>`,
`POST …/<name>/lock`, `POST …/<name>/unlock`, `GET …/<name>/deployments`, `POST …/<name>/rollback`.

An environment is named by its name (a slug, fixed once created), within the org. Creating,
editing rules, deleting, locking and unlocking are a person's acts: an API token gets 403
`person_required` from the scoping base before the view runs.
"""

from __future__ import annotations

from django.db.models import prefetch_related_objects
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from deplite.api.pagination import KeysetPagination
from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet

from ..environments import selectors
from ..environments import services as env_services
from ..environments.overview import environments_summaries
from ..models import Environment, JobSource
from .environment_io import EnvironmentDetailOutput, EnvironmentInput, EnvironmentOutput, LockInput
from .jobs import JobOutput, RollbackOfOutput
from .run import RunOutput

# An environment name is a slug (SlugField): any other character cannot name one, so the URL does not match.
_NAME_KWARG_RE = r"[-a-zA-Z0-9_]+"


class RollbackOutput(RunOutput):
    rollback_of = RollbackOfOutput()


class EnvironmentViewSet(OrgScopedViewSet, mixins.ListModelMixin):
    """Environments: where triggers deploy, with the rules that gate their jobs."""

    queryset = Environment.objects.all()
    serializer_class = EnvironmentOutput
    lookup_field = "name"
    lookup_value_regex = _NAME_KWARG_RE
    permission_map = {
        "list": Perm.TRIGGERS_READ,
        "retrieve": Perm.TRIGGERS_READ,
        "create": Perm.TRIGGERS_MANAGE,
        "partial_update": Perm.TRIGGERS_MANAGE,
        "destroy": Perm.TRIGGERS_MANAGE,
        "lock": Perm.TRIGGERS_RUN,
        "unlock": Perm.TRIGGERS_RUN,
        "deployments": Perm.JOBS_READ,
        "rollback": Perm.TRIGGERS_RUN,
    }
    person_only_actions = frozenset({"create", "partial_update", "destroy", "lock", "unlock"})

    def safely_get_queryset(self, queryset):
        return queryset.select_related("org").prefetch_related("approvers").order_by("name")

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        # Each one's current deployment and live jobs counted: two queries for the whole page.
        context = {**self.get_serializer_context(), "summaries": environments_summaries(page)}
        return self.get_paginated_response(EnvironmentOutput(page, many=True, context=context).data)

    def _answer(self, environment: Environment, *, code: int = status.HTTP_200_OK) -> Response:
        """The environment's detail, read again: rules, lock, current deployment, counts, live jobs (the queue)."""
        environment = self.get_queryset().get(pk=environment.pk)
        queue = selectors.environment_queue(environment)
        # A commit SHA's link needs its trigger's repository: one query for the whole queue.
        prefetch_related_objects([entry.job for entry in queue], "trigger")
        context = {
            **self.get_serializer_context(),
            "summaries": environments_summaries([environment]),
            "queue": queue,
        }
        return Response(EnvironmentDetailOutput(environment, context=context).data, status=code)

    @extend_schema(responses={200: EnvironmentDetailOutput})
    def retrieve(self, request, org_id, name):
        return self._answer(self.get_object())

    @extend_schema(request=EnvironmentInput, responses={201: EnvironmentDetailOutput})
    def create(self, request, org_id):
        data = EnvironmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        environment = env_services.environment_create(
            org=self.org, actor=self.actor, name=data.validated_data["name"], **data.service_kwargs(self.org)
        )
        return self._answer(environment, code=status.HTTP_201_CREATED)

    @extend_schema(request=EnvironmentInput, responses={200: EnvironmentDetailOutput})
    def partial_update(self, request, org_id, name):
        environment = self.get_object()
        data = EnvironmentInput(data=request.data, environment=environment)
        data.is_valid(raise_exception=True)
        environment = env_services.environment_update(
            environment=environment, actor=self.actor, **data.service_kwargs(self.org)
        )
        return self._answer(environment)

    @extend_schema(
        responses={
            204: None,
            409: OpenApiResponse(description="`environment_in_use`: triggers still name it, or its jobs still run."),
        }
    )
    def destroy(self, request, org_id, name):
        env_services.environment_delete(environment=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=LockInput,
        responses={
            200: EnvironmentDetailOutput,
            409: OpenApiResponse(description="`environment_locked`: someone else holds the lock (details name them)."),
        },
    )
    @action(detail=True, methods=["post"])
    def lock(self, request, org_id, name):
        """Lock: new runs by anyone but the holder are refused (409 `environment_locked`); jobs
        already queued or waiting wait, with the lock as their reason."""
        environment = self.get_object()
        data = LockInput(data=request.data)
        data.is_valid(raise_exception=True)
        environment = env_services.environment_lock(
            environment=environment,
            actor=self.actor,
            reason=data.validated_data["reason"],
            expires_at=data.validated_data.get("expires_at"),
        )
        return self._answer(environment)

    @extend_schema(request=None, responses={200: EnvironmentDetailOutput})
    @action(detail=True, methods=["post"])
    def unlock(self, request, org_id, name):
        """Unlock, by the lock's holder or an owner or admin (403 `not_lock_holder` otherwise)."""
        environment = env_services.environment_unlock(
            environment=self.get_object(), actor=self.actor, role=self.principal.role
        )
        return self._answer(environment)

    @extend_schema(responses={200: JobOutput(many=True)})
    @action(detail=True, methods=["get"], pagination_class=KeysetPagination)
    def deployments(self, request, org_id, name):
        """The environment's history: every job of it, newest first (keyset pages, like the jobs list).
        The current deployment and the queue (`liveJobs`) are on the environment itself."""
        environment = self.get_object()
        history = selectors.environment_history(environment).select_related("org", "environment")
        page = self.paginate_queryset(history)
        return self.get_paginated_response(JobOutput(page, many=True).data)

    @extend_schema(
        request=None,
        responses={
            202: RollbackOutput,
            409: OpenApiResponse(
                description="`nothing_to_roll_back`, `trigger_deleted`, `trigger_moved`, or the lock "
                "(`environment_locked`)."
            ),
            422: OpenApiResponse(
                description="`ref_not_allowed`: the earlier deployment's ref no longer matches allowedRefs."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, org_id, name):
        """A new job from the previous succeeded deployment's trigger, ref and params, through the
        environment's rules (approvals and order apply); `rollbackOf` names the deployment it rolls back."""
        result = env_services.environment_rollback(
            environment=self.get_object(), actor=self.actor, source=JobSource.API
        )
        return Response(result.body, status=result.status, headers={"Location": result.body.get("url", "")})
