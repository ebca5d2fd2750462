"""An org's API tokens: list, create (the plaintext is answered this once), revoke."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from deplite.api.fields import StrictCharField

from .. import services
from ..models import ApiToken, StoragePermission, TokenScope
from ..permissions import Perm
from ..scoping import OrgScopedViewSet


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
