"""Members and invitations: an org's members and open invitations (admins manage them), and the
caller's own invitations, which a signed-in person accepts."""

from __future__ import annotations

from typing import Literal

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from deplite.api.fields import StrictCharField

from .. import ratelimit, selectors, services
from ..models import Invitation, Membership, Role
from ..permissions import Perm
from ..scoping import OrgScopedViewSet
from .auth import signed_in_person


class MemberOutput(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    status = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["id", "email", "role", "status", "created_at"]

    def get_status(self, obj) -> str:
        return "active"


class InvitationOutput(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField(read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "created_at", "expires_at"]

    def get_status(self, obj) -> Literal["invited", "expired"]:
        return "expired" if obj.is_expired else "invited"


class MemberCreateInput(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class MemberUpdateInput(serializers.Serializer):
    # PATCH is partial: a body without `role` changes nothing (and is not an error).
    role = serializers.ChoiceField(choices=Role.choices, required=False)


class MemberViewSet(OrgScopedViewSet, mixins.ListModelMixin):
    """`GET/POST /api/orgs/<orgId>/members`, `PATCH/DELETE …/members/<id>`."""

    queryset = Membership.objects.all()
    serializer_class = MemberOutput
    permission_map = {
        "list": Perm.MEMBERS_READ,
        "create": Perm.MEMBERS_MANAGE,
        "partial_update": Perm.MEMBERS_MANAGE,
        "destroy": Perm.MEMBERS_MANAGE,
    }

    def safely_get_queryset(self, queryset):
        return queryset.select_related("user", "org").order_by("created_at")

    @extend_schema(request=MemberCreateInput, responses={201: InvitationOutput})
    def create(self, request, org_id):
        """Invite by email: the person joins once they accept, logged in with that address verified."""
        data = MemberCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.member_add(
            org=self.org, actor=self.actor, actor_role=self.principal.role, **data.validated_data
        )
        return Response(InvitationOutput(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MemberUpdateInput, responses={200: MemberOutput})
    def partial_update(self, request, org_id, pk):
        membership = self.get_object()
        data = MemberUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if "role" in data.validated_data:
            membership = services.member_update(
                membership=membership, actor=self.actor, actor_role=self.principal.role, **data.validated_data
            )
        return Response(MemberOutput(membership).data)

    def destroy(self, request, org_id, pk):
        services.member_remove(membership=self.get_object(), actor=self.actor, actor_role=self.principal.role)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationViewSet(OrgScopedViewSet, mixins.ListModelMixin):
    """`GET /api/orgs/<orgId>/invitations` (not accepted yet, expired ones too),
    `DELETE …/invitations/<id>` (withdraw)."""

    queryset = Invitation.objects.filter(accepted_at__isnull=True)
    serializer_class = InvitationOutput
    permission_map = {"list": Perm.MEMBERS_READ, "destroy": Perm.MEMBERS_MANAGE}

    def safely_get_queryset(self, queryset):
        return queryset.select_related("org").order_by("created_at")

    def destroy(self, request, org_id, pk):
        """Withdraw an invitation: it can no longer be accepted."""
        services.invitation_withdraw(invitation=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyInvitationOutput(serializers.ModelSerializer):
    org_id = serializers.UUIDField(source="org.id")
    org_slug = StrictCharField(source="org.slug")
    org_name = StrictCharField(source="org.name")
    invited_by = serializers.EmailField(source="invited_by.email", default=None, allow_null=True)
    expires_at = serializers.DateTimeField(read_only=True)
    expired = serializers.BooleanField(source="is_expired", read_only=True)

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "org_id",
            "org_slug",
            "org_name",
            "invited_by",
            "created_at",
            "expires_at",
            "expired",
        ]


class JoinedOutput(serializers.ModelSerializer):
    org_id = serializers.UUIDField(source="org.id")
    org_slug = StrictCharField(source="org.slug")

    class Meta:
        model = Membership
        fields = ["id", "org_id", "org_slug", "role", "created_at"]


class MyInvitationListView(APIView):
    """`GET /api/invitations`: open invitations to the caller's verified email addresses."""

    @extend_schema(responses={200: MyInvitationOutput(many=True)})
    def get(self, request):
        invitations = selectors.invitations_open_for(user=signed_in_person(request))
        return Response(MyInvitationOutput(invitations, many=True).data)


class InvitationAcceptView(APIView):
    """`POST /api/invitations/<id>/accept`: join the org (the invited address must be verified)."""

    @extend_schema(request=None, responses={200: JoinedOutput})
    def post(self, request, invitation_id):
        membership = services.invitation_accept(
            invitation_id=invitation_id, user=signed_in_person(request), ip=ratelimit.client_ip(request)
        )
        return Response(JoinedOutput(membership).data)
