"""`manage.py slack_connect`: a self-hosted link without OAuth, checked with auth.test."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from integrations.models import Installation
from tests.factories import InstallationFactory
from triggers.models import ChatProvider

from .conftest import TEAM

pytestmark = pytest.mark.django_db


def test_slack_connect_checks_the_token_and_stores_the_workspace(org_a, slack_api):
    slack_api.answer(
        "auth.test",
        {
            "ok": True,
            "url": "https://acme.slack.com/",
            "team": "Acme",
            "user": "deplite",
            "team_id": TEAM,
            "user_id": "U0BOT",
            "bot_id": "B1",
        },
    )
    out = StringIO()
    call_command("slack_connect", "--org", "acme", "--team-id", TEAM, "--bot-token", "xoxb-1-2-abc", stdout=out)
    installation = Installation.objects.get()
    assert (installation.org, installation.provider, installation.external_id) == (org_a, ChatProvider.SLACK, TEAM)
    assert (installation.name, installation.bot_user_id, installation.bot_token) == ("Acme", "U0BOT", "xoxb-1-2-abc")
    (call,) = slack_api.calls
    assert call.headers["Authorization"] == "Bearer xoxb-1-2-abc"
    assert "Linked Slack workspace Acme" in out.getvalue()
    assert "xoxb" not in out.getvalue()


def test_slack_connect_refuses_a_token_of_another_workspace(org_a, slack_api):
    slack_api.answer("auth.test", {"ok": True, "team": "Other", "team_id": "T0OTHER", "user_id": "U1"})
    with pytest.raises(CommandError, match="belongs to workspace T0OTHER"):
        call_command("slack_connect", "--org", "acme", "--team-id", TEAM, "--bot-token", "xoxb-x")
    assert not Installation.objects.exists()


def test_slack_connect_refuses_a_revoked_token(org_a, slack_api):
    slack_api.answer("auth.test", {"ok": False, "error": "invalid_auth"})
    with pytest.raises(CommandError, match="invalid_auth"):
        call_command("slack_connect", "--org", "acme", "--team-id", TEAM, "--bot-token", "xoxb-x")
    assert not Installation.objects.exists()


def test_slack_connect_refuses_a_workspace_of_another_org(org_a, org_b, slack_api):
    InstallationFactory(org=org_b, external_id=TEAM)
    slack_api.answer("auth.test", {"ok": True, "team": "Acme", "team_id": TEAM, "user_id": "U0BOT"})
    with pytest.raises(CommandError, match="already linked to another Deplite organization"):
        call_command("slack_connect", "--org", "acme", "--team-id", TEAM, "--bot-token", "xoxb-x")
    assert Installation.objects.get().org == org_b
