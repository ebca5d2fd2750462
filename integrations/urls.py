from django.urls import path

from deplite.api.routers import OrgRouter

from . import api, views
from .discord import views as discord_views
from .slack import views as slack_views

router = OrgRouter()
router.register("integrations", api.InstallationViewSet, basename="integrations")
router.register("slack/install-url", api.SlackInstallUrlViewSet, basename="slack-install-url")
router.register("discord/install-url", api.DiscordInstallUrlViewSet, basename="discord-install-url")

# Mounted under api/orgs/<org_id>/ by deplite/urls.py.
org_urlpatterns = router.urls

# What Slack and Discord call, outside /api/ (their own signatures, bodies and answers).
public_urlpatterns = [
    path("integrations/slack/events", slack_views.events, name="slack-events"),
    path("integrations/slack/oauth/callback", slack_views.oauth_callback, name="slack-oauth-callback"),
    path("integrations/discord/interactions", discord_views.interactions, name="discord-interactions"),
    path("integrations/discord/oauth/callback", discord_views.oauth_callback, name="discord-oauth-callback"),
    path("integrations/oauth/result", views.oauth_result, name="integrations-oauth-result"),
]

# Web pages, mounted under orgs/<slug:org_slug>/ by deplite/urls.py.
page_urlpatterns = [
    path("integrations/", views.integrations_page, name="integrations-page"),
    path("integrations/slack/install", views.integration_install, {"provider": "slack"}, name="slack-install"),
    path("integrations/discord/install", views.integration_install, {"provider": "discord"}, name="discord-install"),
    path("integrations/<uuid:installation_id>/disconnect", views.integration_disconnect, name="integration-disconnect"),
]
