"""JSON API for organisations, members, API tokens and the audit log.

Thin views: an input serializer validates, a service writes, an output serializer answers.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.views import TokenRefreshView

from deplite.api.errors import Forbidden, RateLimited, Unauthenticated

from . import ratelimit, selectors, services
from .authentication import EPOCH_CLAIM, TokenPrincipalUser, UserRefreshToken
from .models import (
    ApiToken,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    Role,
    StoragePermission,
    TokenScope,
    User,
)
from .permissions import Perm
from .scoping import Actor, OrgScopedViewSet

# --- auth -----------------------------------------------------------------------------------


class TokenObtainInput(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class TokenObtainView(APIView):
    """`POST /api/auth/token {email, password}` → `{access, refresh}`; failures are rate-limited
    per account and address."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=TokenObtainInput, responses={200: TokenPairOutput})
    def post(self, request):
        data = TokenObtainInput(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"].lower()
        # The same per-account-and-address limit as the site and admin logins (orgs.backends).
        if ratelimit.login_limited(request, email):
            raise RateLimited("Too many failed logins. Try again in a minute.")
        user = authenticate(request, email=email, password=data.validated_data["password"])
        if user is None or not user.is_active:
            raise Unauthenticated("The email or password is incorrect.", code="invalid_credentials")
        refresh = UserRefreshToken.for_user(user)
        return Response({"access": str(refresh.access_token), "refresh": str(refresh)})


class TokenRefreshInput(serializers.Serializer):
    refresh = serializers.CharField()


class RotatingRefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh (rotate, blacklist the old one), refusing a token whose user is
    gone or whose login ended ("log out everywhere", password change) with a 401."""

    token_class = UserRefreshToken

    def validate(self, attrs):
        try:
            data = super().validate(attrs)
        except User.DoesNotExist:
            raise Unauthenticated("The refresh token is invalid or has expired.", code="token_not_valid") from None
        refresh = self.token_class(data["refresh"], verify=False)
        user = User.objects.filter(pk=refresh.get(api_settings.USER_ID_CLAIM)).first()
        if user is None or refresh.get(EPOCH_CLAIM, 0) != user.auth_epoch:
            refresh.blacklist()
            raise Unauthenticated("This login has ended. Log in again.", code="token_not_valid")
        return data


class RefreshView(TokenRefreshView):
    """`POST /api/auth/token/refresh {refresh}` → `{access, refresh}`: a refresh token works
    once; the answer carries its successor."""

    authentication_classes: list = []
    serializer_class = RotatingRefreshSerializer


class LogoutEverywhereView(APIView):
    """`POST /api/auth/logout-everywhere`: end every login of the caller — all refresh
    tokens, access tokens and web sessions, this one included."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        services.user_sessions_end(user=_person(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- organisations --------------------------------------------------------------------------


class OrganizationOutput(serializers.ModelSerializer):
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Organization
        fields = ["id", "slug", "name", "createdAt"]


class OrganizationCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    slug = serializers.CharField(max_length=50, required=False)


class OrganizationUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    slug = serializers.CharField(max_length=50, required=False)


class OrganizationListView(APIView):
    """`GET /api/orgs` (the caller's orgs) and `POST /api/orgs` (create; the caller becomes owner)."""

    @extend_schema(responses={200: OrganizationOutput(many=True)})
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
        actor = Actor(
            kind="user",
            id=str(request.user.pk),
            label=request.user.email,
            ip=ratelimit.client_ip(request),
            user=request.user,
        )
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


# --- members ----------------------------------------------------------------------------------


class MemberOutput(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    status = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Membership
        fields = ["id", "email", "role", "status", "createdAt"]

    def get_status(self, obj) -> str:
        return "active"


class InvitationOutput(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "createdAt"]

    def get_status(self, obj) -> str:
        return "invited"


class MemberCreateInput(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class MemberUpdateInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


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
        data = MemberUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_update(
            membership=membership, actor=self.actor, actor_role=self.principal.role, **data.validated_data
        )
        return Response(MemberOutput(membership).data)

    def destroy(self, request, org_id, pk):
        services.member_remove(membership=self.get_object(), actor=self.actor, actor_role=self.principal.role)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyInvitationOutput(serializers.ModelSerializer):
    orgId = serializers.UUIDField(source="org.id")
    orgSlug = serializers.CharField(source="org.slug")
    orgName = serializers.CharField(source="org.name")
    invitedBy = serializers.EmailField(source="invited_by.email", default=None, allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "orgId", "orgSlug", "orgName", "invitedBy", "createdAt"]


class JoinedOutput(serializers.ModelSerializer):
    orgId = serializers.UUIDField(source="org.id")
    orgSlug = serializers.CharField(source="org.slug")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Membership
        fields = ["id", "orgId", "orgSlug", "role", "createdAt"]


def _person(request):
    """The signed-in person; an API token is not one."""
    if isinstance(request.user, TokenPrincipalUser):
        raise Forbidden("Invitations are accepted by a signed-in person, not an API token.")
    return request.user


class MyInvitationListView(APIView):
    """`GET /api/invitations`: open invitations to the caller's verified email addresses."""

    @extend_schema(responses={200: MyInvitationOutput(many=True)})
    def get(self, request):
        invitations = selectors.invitations_open_for(user=_person(request))
        return Response(MyInvitationOutput(invitations, many=True).data)


class InvitationAcceptView(APIView):
    """`POST /api/invitations/<id>/accept`: join the org (the invited address must be verified)."""

    @extend_schema(request=None, responses={200: JoinedOutput})
    def post(self, request, invitation_id):
        membership = services.invitation_accept(
            invitation_id=invitation_id, user=_person(request), ip=ratelimit.client_ip(request)
        )
        return Response(JoinedOutput(membership).data)


# --- API tokens --------------------------------------------------------------------------------


class ApiTokenOutput(serializers.ModelSerializer):
    scopeType = serializers.CharField(source="scope_type")
    bindingIds = serializers.ListField(source="binding_ids", child=serializers.CharField())
    storagePermissions = serializers.ListField(source="storage_permissions", child=serializers.CharField())
    triggerIds = serializers.ListField(source="trigger_ids", child=serializers.CharField())
    expiresAt = serializers.DateTimeField(source="expires_at")
    lastUsedAt = serializers.DateTimeField(source="last_used_at")
    revokedAt = serializers.DateTimeField(source="revoked_at")
    createdAt = serializers.DateTimeField(source="created_at")
    createdBy = serializers.EmailField(source="created_by.email", default=None)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scopeType",
            "bindingIds",
            "storagePermissions",
            "triggerIds",
            "expiresAt",
            "lastUsedAt",
            "revokedAt",
            "createdAt",
            "createdBy",
        ]


class ApiTokenCreatedOutput(ApiTokenOutput):
    token = serializers.SerializerMethodField()

    class Meta(ApiTokenOutput.Meta):
        fields = [*ApiTokenOutput.Meta.fields, "token"]

    def get_token(self, obj) -> str:
        return self.context["plaintext"]


class ApiTokenCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopeType = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.ORG)
    bindingIds = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=100)
    storagePermissions = serializers.ListField(
        child=serializers.ChoiceField(choices=StoragePermission.choices), required=False, max_length=3
    )
    triggerIds = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=100)
    expiresAt = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, attrs):
        scope = attrs["scopeType"]
        if scope == TokenScope.STORAGE:
            if not attrs.get("bindingIds"):
                raise serializers.ValidationError({"bindingIds": ["A storage token needs at least one binding."]})
            if not attrs.get("storagePermissions"):
                raise serializers.ValidationError(
                    {"storagePermissions": ["A storage token needs at least one permission."]}
                )
        elif attrs.get("bindingIds") or attrs.get("storagePermissions"):
            raise serializers.ValidationError({"bindingIds": ["Only storage tokens take bindings and permissions."]})
        if scope == TokenScope.TRIGGER:
            if not attrs.get("triggerIds"):
                raise serializers.ValidationError({"triggerIds": ["A trigger token needs at least one trigger."]})
        elif attrs.get("triggerIds"):
            raise serializers.ValidationError({"triggerIds": ["Only trigger tokens take triggers."]})
        return attrs


class ApiTokenViewSet(OrgScopedViewSet, mixins.ListModelMixin):
    """`GET/POST /api/orgs/<orgId>/tokens`, `DELETE …/tokens/<id>` (revoke)."""

    queryset = ApiToken.objects.all()
    serializer_class = ApiTokenOutput
    permission_map = {"list": Perm.TOKENS_MANAGE, "create": Perm.TOKENS_MANAGE, "destroy": Perm.TOKENS_MANAGE}

    def safely_get_queryset(self, queryset):
        return queryset.select_related("created_by")

    @extend_schema(request=ApiTokenCreateInput, responses={201: ApiTokenCreatedOutput})
    def create(self, request, org_id):
        data = ApiTokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        token, plaintext = services.token_create(
            org=self.org,
            actor=self.actor,
            name=v["name"],
            scope_type=v["scopeType"],
            binding_ids=v.get("bindingIds"),
            storage_permissions=v.get("storagePermissions"),
            trigger_ids=v.get("triggerIds"),
            expires_at=v.get("expiresAt"),
        )
        out = ApiTokenCreatedOutput(token, context={"plaintext": plaintext})
        return Response(out.data, status=status.HTTP_201_CREATED)

    def destroy(self, request, org_id, pk):
        token = services.token_revoke(token=self.get_object(), actor=self.actor)
        return Response(ApiTokenOutput(token).data)


# --- audit -----------------------------------------------------------------------------------------


class AuditEventOutput(serializers.ModelSerializer):
    actorKind = serializers.CharField(source="actor_kind")
    actorId = serializers.CharField(source="actor_id")
    actorLabel = serializers.CharField(source="actor_label")
    targetType = serializers.CharField(source="target_type")
    targetId = serializers.CharField(source="target_id")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "actorKind",
            "actorId",
            "actorLabel",
            "action",
            "targetType",
            "targetId",
            "data",
            "ip",
            "createdAt",
        ]


class AuditEventViewSet(OrgScopedViewSet, mixins.ListModelMixin):
    """`GET /api/orgs/<orgId>/audit` (admins)."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventOutput
    permission_map = {"list": Perm.AUDIT_READ}
    filterset_fields = ["action", "actor_kind"]
