from django.urls import path, re_path

from deplite.api.routers import OrgRouter

from . import api, views
from .discord import views as discord_views
from .slack import views as slack_views
from .webhook import api as webhook_api
from .webhook import views as webhook_views

router = OrgRouter()
router.register("integrations", api.InstallationViewSet, basename="integrations")

# Mounted under api/orgs/<org_id>/ by deplite/urls.py. An install URL is one answer, not a
# list of rows: its own action name, not `list`.
org_urlpatterns = [
    *router.urls,
    re_path(
        r"^slack/install-url/?$",
        api.SlackInstallUrlViewSet.as_view({"get": "install_url"}),
        name="slack-install-url",
    ),
    re_path(
        r"^discord/install-url/?$",
        api.DiscordInstallUrlViewSet.as_view({"get": "install_url"}),
        name="discord-install-url",
    ),
    # A trigger's webhook "Send test": under the trigger's URL, served here (triggers cannot reach the client).
    re_path(
        r"^triggers/(?P<pk>[^/]+)/notify-test/?$",
        webhook_api.WebhookTestViewSet.as_view({"post": "notify_test"}),
        name="trigger-notify-test-api",
    ),
]

# What Slack and Discord call, outside /api/ (their own signatures, bodies and answers).
public_urlpatterns = [
    path("integrations/slack/events", slack_views.events, name="slack-events"),
    path("integrations/slack/oauth/callback", slack_views.oauth_callback, name="slack-oauth-callback"),
    path("integrations/discord/interactions", discord_views.interactions, name="discord-interactions"),
    path("integrations/discord/oauth/callback", discord_views.oauth_callback, name="discord-oauth-callback"),
    path("integrations/oauth/result", views.oauth_result, name="integrations-oauth-result"),
    path("integrations/slack/interactions", slack_views.interactions, name="slack-interactions"),
    path("integrations/chat/link/<str:token>", views.identity_link, name="chat-identity-link"),
]

# Web pages, mounted under orgs/<slug:org_slug>/ by deplite/urls.py.
page_urlpatterns = [
    path("integrations/", views.integrations_page, name="integrations-page"),
    path("integrations/<uuid:installation_id>/disconnect", views.integration_disconnect, name="integration-disconnect"),
    path("integrations/identities/", views.identities_page, name="chat-identities-page"),
    path("integrations/identities/<uuid:identity_id>/remove", views.identity_remove, name="chat-identity-remove"),
    path("triggers/<uuid:trigger_id>/notify-test", webhook_views.notify_test, name="trigger-notify-test"),
]
