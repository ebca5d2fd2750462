"""The integrations API and pages, and what triggers say about chat: the docs' Slack JSON,
`chatConnected` with its reason, the trigger form offering linked workspaces."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from integrations.models import Installation
from orgs.models import AuditEvent
from tests.factories import InstallationFactory, TriggerFactory
from triggers.models import ChatProvider

from .conftest import CHANNEL, TEAM

pytestmark = pytest.mark.django_db

DOCS_SLACK_TRIGGER = '{ "type": "slack", "chatProvider": "slack", "chatTeamId": "T0123", "chatChannelId": "C0123", "chatKeyword": "deploy" }'


def test_docs_slack_trigger_json_works_as_written(api, admin_user, org_a, slack_install):
    # Sent as the docs' curl sends it: no JSON Content-Type.
    response = api.as_user(admin_user).post(
        "/api/orgs/acme/triggers", DOCS_SLACK_TRIGGER, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["workflow"], body["type"], body["chatKeyword"]) == (
        "deploy",
        "deploy",
        "slack",
        "deploy",
    )
    assert (body["chatConnected"], body["chatConnectedReason"]) == (True, "")


def test_a_chat_trigger_of_an_unlinked_team_is_accepted_but_not_connected(api, admin_user, org_a):
    response = api.as_user(admin_user).post(
        "/api/orgs/acme/triggers", DOCS_SLACK_TRIGGER, content_type="application/json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["chatConnected"] is False
    assert "T0123 is not linked to this organization" in body["chatConnectedReason"]
    listed = api.get("/api/orgs/acme/triggers").json()["results"][0]
    assert listed["chatConnected"] is False


def test_a_team_linked_to_another_org_does_not_connect_this_orgs_trigger(api, admin_user, org_a, org_b):
    InstallationFactory(org=org_b, external_id=TEAM)
    body = (
        api.as_user(admin_user)
        .post("/api/orgs/acme/triggers", DOCS_SLACK_TRIGGER, content_type="application/json")
        .json()
    )
    assert body["chatConnected"] is False


def test_webhook_triggers_have_no_chat_connection(api, admin_user, org_a):
    body = (
        api.as_user(admin_user)
        .post(
            "/api/orgs/acme/triggers", json.dumps({"name": "w", "workflow": "deploy"}), content_type="application/json"
        )
        .json()
    )
    assert body["chatConnected"] is None


def test_the_trigger_list_asks_for_linked_teams_once(api, admin_user, org_a, slack_install):
    api.as_user(admin_user)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.get("/api/orgs/acme/triggers").status_code == 200
        return len(ctx.captured_queries)

    TriggerFactory(
        org=org_a, type="slack", chat_provider="slack", chat_team_id=TEAM, chat_channel_id=CHANNEL, chat_keyword="k0"
    )
    one = count()
    for i in range(1, 11):
        TriggerFactory(
            org=org_a,
            type="slack",
            chat_provider="slack",
            chat_team_id=TEAM,
            chat_channel_id=CHANNEL,
            chat_keyword=f"k{i}",
        )
    assert count() == one


WEBHOOK_NOTIFYING = {
    "name": "deploy-prod",
    "workflow": "deploy",
    "notifyProvider": "slack",
    "notifyTeamId": TEAM,
    "notifyChannelId": CHANNEL,
}


def test_a_trigger_notifying_an_unlinked_team_is_saved_but_says_it_is_not_connected(api, admin_user, org_a):
    """Saved (the workspace may be linked later), but the answer says now what would otherwise
    show only as each notification failing `not_connected`."""
    response = api.as_user(admin_user).post("/api/orgs/acme/triggers", WEBHOOK_NOTIFYING, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["notifyConnected"] is False
    assert "Slack workspace T0123 is not linked to this organization" in body["notifyConnectedReason"]
    assert "not_connected" in body["notifyConnectedReason"]
    assert body["chatConnected"] is None  # a webhook trigger: no chat team to judge
    listed = api.get("/api/orgs/acme/triggers").json()["results"][0]
    assert (listed["notifyConnected"], listed["notifyConnectedReason"]) == (False, body["notifyConnectedReason"])


def test_a_trigger_notifying_a_linked_team_is_connected_and_one_without_notify_is_null(
    api, admin_user, org_a, slack_install
):
    api.as_user(admin_user)
    body = api.post("/api/orgs/acme/triggers", WEBHOOK_NOTIFYING, format="json").json()
    assert (body["notifyConnected"], body["notifyConnectedReason"]) == (True, "")
    plain = api.post("/api/orgs/acme/triggers", {"name": "plain", "workflow": "deploy"}, format="json").json()
    assert (plain["notifyConnected"], plain["notifyConnectedReason"]) == (None, "")


def test_a_notify_team_linked_to_another_org_does_not_connect_this_orgs_trigger(api, admin_user, org_a, org_b):
    InstallationFactory(org=org_b, external_id=TEAM)
    body = api.as_user(admin_user).post("/api/orgs/acme/triggers", WEBHOOK_NOTIFYING, format="json").json()
    assert body["notifyConnected"] is False


def test_same_keyword_and_channel_in_two_orgs_is_allowed(api, admin_user, admin_of_b, org_a, org_b):
    for user, slug in ((admin_user, "acme"), (admin_of_b, "bravo")):
        response = api.as_user(user).post(
            f"/api/orgs/{slug}/triggers", DOCS_SLACK_TRIGGER, content_type="application/json"
        )
        assert response.status_code == 201
    # Within one org it stays unique.
    response = api.as_user(admin_user).post(
        "/api/orgs/acme/triggers", DOCS_SLACK_TRIGGER, content_type="application/json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "chat_keyword_taken"


# --- the integrations API -------------------------------------------------------------------------------


def test_list_shows_this_orgs_installations_without_tokens(
    api, admin_user, org_a, org_b, slack_install, discord_install
):
    InstallationFactory(org=org_b, external_id="T0BRAVO")
    response = api.as_user(admin_user).get("/api/orgs/acme/integrations")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert {(r["provider"], r["externalId"]) for r in rows} == {
        ("slack", TEAM),
        ("discord", discord_install.external_id),
    }
    assert "xoxb" not in response.content.decode()
    assert all("botToken" not in r for r in rows)


def test_disconnect_removes_the_installation_and_audits(api, owner, org_a, slack_install):
    response = api.as_user(owner).delete(f"/api/orgs/acme/integrations/{slack_install.pk}")
    assert response.status_code == 204
    assert not Installation.objects.exists()
    assert AuditEvent.objects.filter(org=org_a, action="integration.removed", actor_label=owner.email).exists()


def test_members_tokens_and_outsiders_cannot_list_or_disconnect(api, member, org_token, outsider, slack_install):
    url = f"/api/orgs/acme/integrations/{slack_install.pk}"
    assert api.as_user(member).get("/api/orgs/acme/integrations").status_code == 403
    assert api.as_user(member).delete(url).status_code == 403
    assert api.as_token(org_token[1]).delete(url).status_code == 403
    assert api.as_user(outsider).delete(url).status_code == 404
    assert api.as_user(outsider).delete(f"/api/orgs/bravo/integrations/{slack_install.pk}").status_code == 404
    assert Installation.objects.filter(pk=slack_install.pk).exists()


# --- pages ------------------------------------------------------------------------------------------------


def _page(user, path):
    client = Client()
    client.force_login(user)
    return client.get(path)


def test_integrations_page_says_which_variables_to_set_when_unconfigured(admin_user, settings):
    settings.SLACK_CLIENT_ID = settings.SLACK_CLIENT_SECRET = settings.SLACK_SIGNING_SECRET = ""
    settings.DISCORD_CLIENT_ID = "1"
    settings.DISCORD_CLIENT_SECRET = settings.DISCORD_PUBLIC_KEY = settings.DISCORD_BOT_TOKEN = "x"
    html = _page(admin_user, "/orgs/acme/integrations/").content.decode()
    assert "Slack is not configured on this server." in html
    assert "<code>SLACK_CLIENT_ID</code>, <code>SLACK_CLIENT_SECRET</code>, <code>SLACK_SIGNING_SECRET</code>" in html
    assert 'data-testid="add-discord"' in html and 'data-testid="add-slack"' not in html


APP_SETTINGS_URLS = {
    "slack-redirect-url": "https://deplite.example.com/integrations/slack/oauth/callback",
    "slack-events-url": "https://deplite.example.com/integrations/slack/events",
    "slack-command-url": "https://deplite.example.com/integrations/slack/events",
    "slack-interactions-url": "https://deplite.example.com/integrations/slack/interactions",
    "discord-interactions-url": "https://deplite.example.com/integrations/discord/interactions",
    "discord-redirect-url": "https://deplite.example.com/integrations/discord/oauth/callback",
}


def _app_settings_urls(html: str) -> dict[str, str]:
    return dict(re.findall(r'<code id="[^"]+" data-testid="([a-z-]+-url)">([^<]*)</code>', html))


def test_integrations_page_shows_absolute_app_urls_once_slack_and_discord_are_set_up(
    admin_user, slack_api, discord_api, slack_install, discord_install, settings
):
    """Slack's and Discord's settings take absolute URLs, and an app is fixed or moved after it
    is linked too: the page keeps showing them, from DEPLITE_PUBLIC_URL (not the request's host)."""
    settings.DEPLITE_PUBLIC_URL = "https://deplite.example.com"
    html = _page(admin_user, "/orgs/acme/integrations/").content.decode()
    assert 'data-testid="installation-T0123"' in html and 'data-testid="add-slack"' in html
    assert _app_settings_urls(html) == APP_SETTINGS_URLS


def test_integrations_page_shows_absolute_app_urls_before_anything_is_configured(admin_user, settings):
    settings.DEPLITE_PUBLIC_URL = "https://deplite.example.com/"
    settings.SLACK_CLIENT_ID = settings.SLACK_CLIENT_SECRET = settings.SLACK_SIGNING_SECRET = ""
    settings.DISCORD_CLIENT_ID = settings.DISCORD_CLIENT_SECRET = ""
    html = _page(admin_user, "/orgs/acme/integrations/").content.decode()
    assert 'data-testid="unconfigured-slack"' in html and 'data-testid="unconfigured-discord"' in html
    assert _app_settings_urls(html) == APP_SETTINGS_URLS


def test_add_to_slack_redirects_to_slack_with_a_fresh_state(admin_user, slack_api):
    client = Client()
    client.force_login(admin_user)
    response = client.post("/orgs/acme/integrations/", {"install": "slack"})
    assert response.status_code == 302
    assert response["Location"].startswith("https://slack.com/oauth/v2/authorize?")
    assert "state=" in response["Location"]


def test_members_do_not_get_the_integrations_page(member):
    assert _page(member, "/orgs/acme/integrations/").status_code == 403


def test_trigger_form_offers_the_linked_workspaces(admin_user, slack_install):
    html = _page(admin_user, "/orgs/acme/triggers/new/").content.decode()
    assert '<option value="T0123">Slack Acme Slack</option>' in html
    assert 'list="linked-team-ids"' in html


def test_trigger_page_marks_an_unlinked_chat_trigger(admin_user, org_a):
    trigger = TriggerFactory(
        org=org_a,
        type="slack",
        chat_provider="slack",
        chat_team_id="T0NOPE",
        chat_channel_id=CHANNEL,
        chat_keyword="deploy",
    )
    html = _page(admin_user, f"/orgs/acme/triggers/{trigger.pk}/").content.decode()
    assert "not connected" in html
    assert "T0NOPE is not linked to this organization" in html


def test_trigger_page_warns_that_notifications_to_an_unlinked_team_cannot_be_sent(admin_user, org_a, slack_install):
    unlinked = TriggerFactory(
        org=org_a, name="unlinked", notify_provider="slack", notify_team_id="T0NOPE", notify_channel_id=CHANNEL
    )
    html = _page(admin_user, f"/orgs/acme/triggers/{unlinked.pk}/").content.decode()
    assert 'data-testid="notify-warning"' in html
    assert "Result notifications of this trigger cannot be sent" in html
    assert "T0NOPE is not linked to this organization" in html
    linked = TriggerFactory(
        org=org_a, name="linked", notify_provider="slack", notify_team_id=TEAM, notify_channel_id=CHANNEL
    )
    html = _page(admin_user, f"/orgs/acme/triggers/{linked.pk}/").content.decode()
    assert 'data-testid="notify-warning"' not in html
    assert 'data-testid="notify-connected">connected<' in html


def test_admin_masks_the_bot_token(owner, slack_install):
    owner.is_staff = owner.is_superuser = True
    owner.save()
    for url in ("/admin/integrations/installation/", "/admin/integrations/chatcommand/"):
        assert _page(owner, url).status_code == 200
    page = _page(owner, f"/admin/integrations/installation/{slack_install.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "•••••••• (set)" in html
    assert slack_install.bot_token not in html
    assert ChatProvider.SLACK.label in html


def test_selectors_never_hand_out_another_orgs_installation(org_a, org_b, slack_install):
    from integrations.selectors import installation_for_org

    assert installation_for_org(org_id=org_a.pk, provider="slack", external_id=TEAM) == slack_install
    assert installation_for_org(org_id=org_b.pk, provider="slack", external_id=TEAM) is None


def test_trigger_list_marks_only_unlinked_chat_triggers(admin_user, org_a, slack_install):
    TriggerFactory(
        org=org_a,
        name="linked",
        type="slack",
        chat_provider="slack",
        chat_team_id=TEAM,
        chat_channel_id=CHANNEL,
        chat_keyword="a",
    )
    TriggerFactory(
        org=org_a,
        name="unlinked",
        type="slack",
        chat_provider="slack",
        chat_team_id="T0NOPE",
        chat_channel_id=CHANNEL,
        chat_keyword="b",
    )
    html = _page(admin_user, "/orgs/acme/triggers/").content.decode()
    assert html.count('data-testid="not-connected"') == 1
    assert html.index('data-testid="not-connected"') > html.index(">unlinked<")
