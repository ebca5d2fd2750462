"""The Slack install: install-url → approval in Slack → callback → installation of the
right org; every refusal redirects to the org's Integrations page and stores nothing."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client
from django.utils import timezone

from integrations.models import Installation, OAuthState
from orgs.models import AuditEvent
from tests.factories import InstallationFactory
from triggers.models import ChatProvider

from .conftest import TEAM

pytestmark = pytest.mark.django_db


def oauth_ok(team=TEAM, name="Acme Slack", token="xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"):  # noqa: S107
    return {
        "ok": True,
        "access_token": token,
        "token_type": "bot",
        "scope": "app_mentions:read,chat:write,chat:write.public,commands",
        "bot_user_id": "U0KRQLJ9H",
        "app_id": "A0KRD7HC3",
        "team": {"name": name, "id": team},
        "enterprise": None,
        "authed_user": {"id": "U1234"},
    }


def install_url(api, user) -> str:
    response = api.as_user(user).get("/api/orgs/acme/slack/install-url")
    assert response.status_code == 200, response.content
    return response.json()["url"]


def state_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["state"][0]


def callback(client: Client, **query):
    return client.get("/integrations/slack/oauth/callback", query)


def logged_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def result_of(response) -> tuple[str, dict]:
    assert response.status_code == 302
    location = urlparse(response["Location"])
    return location.path, {k: v[0] for k, v in parse_qs(location.query).items()}


def test_whole_install_stores_the_workspace_for_the_right_org(api, admin_user, org_a, org_b, slack_api):
    slack_api.answer("oauth.v2.access", oauth_ok())
    url = install_url(api, admin_user)
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    assert parsed.netloc == "slack.com"
    assert query["client_id"] == ["1111.2222"]
    assert set(query["scope"][0].split(",")) == {"app_mentions:read", "chat:write", "chat:write.public", "commands"}
    assert query["redirect_uri"] == ["http://127.0.0.1:8000/integrations/slack/oauth/callback"]

    # The user approves in Slack; Slack sends the browser back with a code and the state.
    browser = Client()
    browser.force_login(admin_user)
    response = callback(browser, code="1234.5678", state=state_of(url))

    assert result_of(response) == ("/orgs/acme/integrations/", {"result": "connected", "provider": "slack"})
    installation = Installation.objects.get()
    assert (installation.org, installation.provider, installation.external_id) == (org_a, ChatProvider.SLACK, TEAM)
    assert installation.name == "Acme Slack"
    assert installation.bot_user_id == "U0KRQLJ9H"
    assert installation.bot_token.startswith("xoxb-17653672481")
    assert installation.installed_by == admin_user
    assert "chat:write" in installation.scopes
    # oauth.v2.access was called with the app's credentials, the code and the same redirect.
    (call,) = slack_api.calls
    sent = parse_qs(call.raw)
    assert sent["code"] == ["1234.5678"]
    assert sent["redirect_uri"] == ["http://127.0.0.1:8000/integrations/slack/oauth/callback"]
    assert (sent.get("client_id") or [call.auth_user]) == ["1111.2222"]
    assert AuditEvent.objects.filter(org=org_a, action="integration.linked").count() == 1
    page = browser.get(response["Location"])
    assert "Slack workspace linked to this organization." in page.content.decode()
    assert "Acme Slack" in page.content.decode()


def test_the_callback_needs_a_logged_in_browser_and_refusing_it_uses_the_state_up(api, owner, slack_api):
    # An install link opened in a browser without a Deplite session (a link sent to another
    # workspace's admin) links nothing, and the state cannot be completed afterwards.
    state = state_of(install_url(api, owner))
    path, result = result_of(callback(Client(), code="c", state=state))
    assert (path, result["result"]) == ("/integrations/oauth/result", "state_login_required")
    page = Client().get(f"{path}?result=state_login_required&provider=slack")
    assert "Log in to Deplite as the person who started the install" in page.content.decode()
    assert result_of(callback(logged_in(owner), code="c", state=state))[1]["result"] == "state_reused"
    assert not Installation.objects.exists()
    assert slack_api.calls == []


def test_the_user_who_asked_for_the_url_completes_it_in_their_browser(api, owner, org_a, slack_api):
    # The docs' flow: get the URL with a JWT, open it in a browser logged in as the same user.
    slack_api.answer("oauth.v2.access", oauth_ok())
    response = callback(logged_in(owner), code="c", state=state_of(install_url(api, owner)))
    assert result_of(response)[1]["result"] == "connected"
    assert Installation.objects.get().installed_by == owner


@pytest.mark.parametrize("state", [None, "", "not-a-state-we-issued"])
def test_missing_or_unknown_state_is_refused(api, admin_user, slack_api, state):
    install_url(api, admin_user)
    query = {"code": "c"} if state is None else {"code": "c", "state": state}
    path, result = result_of(callback(Client(), **query))
    assert path == "/integrations/oauth/result"
    assert result["result"] == ("state_missing" if not state else "state_invalid")
    assert not Installation.objects.exists()
    assert slack_api.calls == []
    page = Client().get(f"{path}?result={result['result']}&provider=slack")
    assert "Start again from the Integrations page" in page.content.decode()


def test_state_of_another_user_is_refused_and_used_up(api, admin_user, owner, slack_api):
    url = install_url(api, admin_user)
    path, result = result_of(callback(logged_in(owner), code="c", state=state_of(url)))
    assert (path, result["result"]) == ("/orgs/acme/integrations/", "state_mismatch")
    # A refused link stays refused, even for the user who started it.
    assert result_of(callback(logged_in(admin_user), code="c", state=state_of(url)))[1]["result"] == "state_reused"
    assert not Installation.objects.exists()
    assert slack_api.calls == []


def test_reused_state_is_refused(api, admin_user, slack_api):
    slack_api.answer("oauth.v2.access", oauth_ok())
    state = state_of(install_url(api, admin_user))
    assert result_of(callback(logged_in(admin_user), code="c", state=state))[1]["result"] == "connected"
    Installation.objects.all().delete()
    assert result_of(callback(logged_in(admin_user), code="c2", state=state))[1]["result"] == "state_reused"
    assert not Installation.objects.exists()
    assert len(slack_api.calls) == 1


def test_expired_state_is_refused(api, admin_user, slack_api):
    state = state_of(install_url(api, admin_user))
    OAuthState.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    path, result = result_of(callback(logged_in(admin_user), code="c", state=state))
    assert (path, result["result"]) == ("/orgs/acme/integrations/", "state_expired")
    assert not Installation.objects.exists()
    assert slack_api.calls == []


def test_state_lives_ten_minutes(api, admin_user, slack_api):
    install_url(api, admin_user)
    state = OAuthState.objects.get()
    assert state.expires_at - state.created_at == timedelta(minutes=10)
    assert state.user == admin_user


def test_denied_in_slack_stores_nothing(api, admin_user, slack_api):
    state = state_of(install_url(api, admin_user))
    path, result = result_of(callback(logged_in(admin_user), error="access_denied", state=state))
    assert (path, result["result"]) == ("/orgs/acme/integrations/", "denied")
    assert not Installation.objects.exists()
    assert slack_api.calls == []


def test_workspace_linked_to_another_org_is_refused_and_left_alone(api, admin_user, org_b, slack_api):
    theirs = InstallationFactory(
        org=org_b, provider=ChatProvider.SLACK, external_id=TEAM, name="Bravo", bot_token="xoxb-b"
    )
    slack_api.answer("oauth.v2.access", oauth_ok(token="xoxb-new-token"))  # noqa: S106
    path, result = result_of(callback(logged_in(admin_user), code="c", state=state_of(install_url(api, admin_user))))
    assert (path, result["result"]) == ("/orgs/acme/integrations/", "linked_elsewhere")
    theirs.refresh_from_db()
    assert (theirs.org, theirs.name, theirs.bot_token) == (org_b, "Bravo", "xoxb-b")
    assert Installation.objects.count() == 1


def test_reinstall_into_the_same_org_refreshes_the_token(api, admin_user, org_a, slack_api):
    InstallationFactory(org=org_a, provider=ChatProvider.SLACK, external_id=TEAM, bot_token="xoxb-old")
    slack_api.answer("oauth.v2.access", oauth_ok(token="xoxb-new"))  # noqa: S106
    assert (
        result_of(callback(logged_in(admin_user), code="c", state=state_of(install_url(api, admin_user))))[1]["result"]
        == "relinked"
    )
    assert Installation.objects.get().bot_token == "xoxb-new"


def test_slack_refusing_the_code_stores_nothing(api, admin_user, slack_api):
    slack_api.answer("oauth.v2.access", {"ok": False, "error": "invalid_code"})
    result = result_of(callback(logged_in(admin_user), code="c", state=state_of(install_url(api, admin_user))))[1]
    assert result["result"] == "exchange_failed"
    assert not Installation.objects.exists()


def test_a_token_cannot_get_an_install_url(api, org_token, slack_api):
    response = api.as_token(org_token[1]).get("/api/orgs/acme/slack/install-url")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert not OAuthState.objects.exists()


def test_a_member_cannot_and_an_outsider_does_not_see_the_org(api, member, outsider, slack_api):
    assert api.as_user(member).get("/api/orgs/acme/slack/install-url").status_code == 403
    assert api.as_user(outsider).get("/api/orgs/acme/slack/install-url").status_code == 404
    assert not OAuthState.objects.exists()


def test_unconfigured_slack_says_which_variables_to_set(api, admin_user, slack_api, settings):
    settings.SLACK_CLIENT_ID = ""
    settings.SLACK_SIGNING_SECRET = ""
    response = api.as_user(admin_user).get("/api/orgs/acme/slack/install-url")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "provider_not_configured"
    assert error["details"]["missing"] == ["SLACK_CLIENT_ID", "SLACK_SIGNING_SECRET"]
    assert "SLACK_CLIENT_ID" in error["message"]
