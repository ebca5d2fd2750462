"""JSON API of integrations: linked workspaces/guilds, disconnect, and the install URLs.

Installing and disconnecting need a signed-in owner or admin: API tokens never hold
`integrations.manage` (orgs.permissions), so they get a 403 like any missing permission.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from deplite.api.errors import Conflict, Forbidden
from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet
from triggers.models import ChatProvider

from . import services
from .discord import install as discord_install
from .models import Installation
from .providers import provider_status
from .slack import install as slack_install


class InstallationOutput(serializers.ModelSerializer):
    installed_by = serializers.SerializerMethodField()

    class Meta:
        model = Installation
        # Never the bot token.
        fields = ["id", "provider", "external_id", "name", "bot_user_id", "scopes", "installed_by", "created_at"]

    def get_installed_by(self, obj) -> str:
        return obj.installed_by.email if obj.installed_by_id else ""


class InstallationViewSet(OrgScopedViewSet, mixins.ListModelMixin):
    """`GET /api/orgs/<orgId>/integrations`, `DELETE …/integrations/<id>` (disconnect)."""

    queryset = Installation.objects.all()
    serializer_class = InstallationOutput
    permission_map = {"list": Perm.INTEGRATIONS_MANAGE, "destroy": Perm.INTEGRATIONS_MANAGE}

    def safely_get_queryset(self, queryset):
        # The token is never read here: no reason to decrypt it.
        return queryset.select_related("installed_by").defer("bot_token")

    def destroy(self, request, org_id, pk):
        services.installation_remove(installation=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InstallUrlOutput(serializers.Serializer):
    url = serializers.URLField()


class _InstallUrlViewSet(OrgScopedViewSet):
    provider: str
    queryset = Installation.objects.none()
    permission_map = {"install_url": Perm.INTEGRATIONS_MANAGE}

    def authorize_url(self, state: str) -> str:
        raise NotImplementedError

    @extend_schema(
        responses={
            200: InstallUrlOutput,
            409: OpenApiResponse(
                description="This provider is not configured on the server (`provider_not_configured`)."
            ),
        }
    )
    def install_url(self, request, org_id):
        if self.principal.user is None:  # belt and braces: tokens lack the permission anyway
            raise Forbidden("Only a signed-in owner or admin can install an integration.")
        status_ = provider_status(self.provider)
        if not status_.configured:
            raise Conflict(status_.message, code="provider_not_configured", details={"missing": list(status_.missing)})
        state = services.oauth_state_issue(org=self.org, user=self.principal.user, provider=self.provider)
        return Response({"url": self.authorize_url(state)})


class SlackInstallUrlViewSet(_InstallUrlViewSet):
    """`GET /api/orgs/<orgId>/slack/install-url` → `{url}` (valid 10 minutes, once)."""

    provider = ChatProvider.SLACK

    def authorize_url(self, state: str) -> str:
        return slack_install.authorize_url(state=state)


class DiscordInstallUrlViewSet(_InstallUrlViewSet):
    """`GET /api/orgs/<orgId>/discord/install-url` → `{url}` (valid 10 minutes, once)."""

    provider = ChatProvider.DISCORD

    def authorize_url(self, state: str) -> str:
        return discord_install.authorize_url(state=state)
