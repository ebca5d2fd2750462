"""Organisations: the caller's list, creating one, reading and renaming one."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from deplite.api.errors import Forbidden
from deplite.api.fields import DocumentedPattern, StrictCharField, rule

from .. import ratelimit, rules, services
from ..actors import Actor
from ..authentication import TokenPrincipalUser
from ..models import Organization
from ..permissions import Perm
from ..scoping import OrgScopedViewSet


class OrganizationOutput(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "slug", "name", "created_at"]


class OrganizationCreateInput(serializers.Serializer):
    name = StrictCharField(max_length=100)
    slug = StrictCharField(max_length=50, required=False, validators=[DocumentedPattern(rules.SLUG_RE)])

    validate_slug = rule(rules.clean_slug)


class OrganizationUpdateInput(serializers.Serializer):
    name = StrictCharField(max_length=100, required=False)
    slug = StrictCharField(max_length=50, required=False, validators=[DocumentedPattern(rules.SLUG_RE)])

    validate_slug = rule(rules.clean_slug)


class OrganizationPageOutput(serializers.Serializer):
    """`GET /api/orgs` answers in the list envelope every other list uses (one page: all of them)."""

    count = serializers.IntegerField()
    next = StrictCharField(allow_null=True)
    previous = StrictCharField(allow_null=True)
    results = OrganizationOutput(many=True)


class OrganizationListView(APIView):
    """`GET /api/orgs` (the caller's orgs) and `POST /api/orgs` (create; the caller becomes owner)."""

    @extend_schema(operation_id="api_orgs_list", responses={200: OrganizationPageOutput})
    def get(self, request):
        if isinstance(request.user, TokenPrincipalUser):
            orgs = [request.user.token.org]
        else:
            orgs = Organization.objects.filter(memberships__user=request.user).order_by("name")
        return Response(
            {"count": len(orgs), "next": None, "previous": None, "results": OrganizationOutput(orgs, many=True).data}
        )

    @extend_schema(request=OrganizationCreateInput, responses={201: OrganizationOutput})
    def post(self, request):
        if isinstance(request.user, TokenPrincipalUser):
            raise Forbidden("API tokens cannot create organizations.")
        data = OrganizationCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        actor = Actor.for_user(request.user, ip=ratelimit.client_ip(request))
        org = services.org_create(user=request.user, actor=actor, **data.validated_data)
        return Response(OrganizationOutput(org).data, status=status.HTTP_201_CREATED)


class OrganizationViewSet(OrgScopedViewSet):
    """`GET/PATCH /api/orgs/<orgId>`."""

    queryset = Organization.objects.none()
    permission_map = {"retrieve": Perm.ORG_READ, "partial_update": Perm.ORG_WRITE}
    serializer_class = OrganizationOutput

    def retrieve(self, request, org_id):
        return Response(OrganizationOutput(self.org).data)

    @extend_schema(request=OrganizationUpdateInput, responses={200: OrganizationOutput})
    def partial_update(self, request, org_id):
        data = OrganizationUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        org = services.org_update(org=self.org, actor=self.actor, **data.validated_data)
        return Response(OrganizationOutput(org).data)
