"""JSON API for organisations, members, API tokens and the audit log.

Thin views: an input serializer validates, a service writes, an output serializer answers.
"""

from __future__ import annotations

from typing import Literal

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.views import TokenRefreshView

from deplite.api.errors import Forbidden, RateLimited, Unauthenticated
from deplite.api.fields import DocumentedPattern, StrictCharField, rule

from . import ratelimit, rules, selectors, services
from .actors import Actor
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
from .scoping import OrgScopedViewSet

# --- auth -----------------------------------------------------------------------------------


class TokenObtainInput(serializers.Serializer):
    email = serializers.EmailField()
    password = StrictCharField(max_length=4096, trim_whitespace=False)


class TokenPairOutput(serializers.Serializer):
    access = StrictCharField()
    refresh = StrictCharField()


class TokenObtainView(APIView):
    """`POST /api/auth/token {email, password}` → `{access, refresh}`; failures are rate-limited
    per account and address."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=TokenObtainInput,
        responses={
            200: TokenPairOutput,
            401: OpenApiResponse(description="The email or password is incorrect."),
            429: OpenApiResponse(description="Too many failed logins for this account from this address."),
        },
    )
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


# --- members ----------------------------------------------------------------------------------


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
        fields = ["id", "email", "role", "org_id", "org_slug", "org_name", "invited_by", "created_at", "expires_at", "expired"]


class JoinedOutput(serializers.ModelSerializer):
    org_id = serializers.UUIDField(source="org.id")
    org_slug = StrictCharField(source="org.slug")

    class Meta:
        model = Membership
        fields = ["id", "org_id", "org_slug", "role", "created_at"]


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
    scope_type = StrictCharField()
    binding_ids = serializers.ListField(child=StrictCharField())
    storage_permissions = serializers.ListField(child=StrictCharField())
    trigger_ids = serializers.ListField(child=StrictCharField())
    # Who made it, by email (the row keeps the user).
    created_by = serializers.EmailField(source="created_by.email", default=None, allow_null=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scope_type",
            "binding_ids",
            "storage_permissions",
            "trigger_ids",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "created_at",
            "created_by",
        ]


class ApiTokenCreatedOutput(ApiTokenOutput):
    token = serializers.SerializerMethodField()

    class Meta(ApiTokenOutput.Meta):
        fields = [*ApiTokenOutput.Meta.fields, "token"]

    def get_token(self, obj) -> str:
        return self.context["plaintext"]


class ApiTokenCreateInput(serializers.Serializer):
    # Optional: the docs' permissions JSON names none; the service then names the token.
    name = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    scope_type = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.ORG)
    binding_ids = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=100)
    storage_permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=StoragePermission.choices), required=False, max_length=3
    )
    trigger_ids = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, attrs):
        scope = attrs["scope_type"]
        errors: dict[str, list[str]] = {}
        if scope == TokenScope.STORAGE:
            if not attrs.get("binding_ids"):
                errors["binding_ids"] = ["A storage token needs at least one binding."]
            if not attrs.get("storage_permissions"):
                errors["storage_permissions"] = ["A storage token needs at least one permission."]
        elif attrs.get("binding_ids") or attrs.get("storage_permissions"):
            errors["binding_ids"] = ["Only storage tokens take bindings and permissions."]
        if scope == TokenScope.TRIGGER:
            if not attrs.get("trigger_ids"):
                errors["trigger_ids"] = ["A trigger token needs at least one trigger."]
        elif attrs.get("trigger_ids"):
            errors["trigger_ids"] = ["Only trigger tokens take triggers."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def service_kwargs(self) -> dict:
        v = self.validated_data
        return {
            "name": v["name"],
            "scope_type": v["scope_type"],
            "binding_ids": v.get("binding_ids"),
            "storage_permissions": v.get("storage_permissions"),
            "trigger_ids": v.get("trigger_ids"),
            "expires_at": v.get("expires_at"),
        }


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
        token, plaintext = services.token_create(org=self.org, actor=self.actor, **data.service_kwargs())
        out = ApiTokenCreatedOutput(token, context={"plaintext": plaintext})
        return Response(out.data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ApiTokenOutput})
    def destroy(self, request, org_id, pk):
        """Revoke: answers the token as it now is (with `revokedAt`)."""
        token = services.token_revoke(token=self.get_object(), actor=self.actor)
        return Response(ApiTokenOutput(token).data)


# --- audit -----------------------------------------------------------------------------------------


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
