"""Chat identities: `/deplite login` answers privately with a one-time link, the link page
links the chat user to the signed-in member who confirms, `/deplite logout` and the pages unlink,
and a removed member's identities go with them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from integrations import identities
from integrations.models import ChatIdentity, ChatLinkToken
from integrations.tasks import chat_link_tokens_purge
from orgs.actors import Actor
from orgs.models import AuditEvent, Membership
from orgs.services import member_remove
from tests.factories import MembershipFactory
from triggers.models import ChatProvider, Job

from .conftest import (
    DISCORD_USER,
    GUILD,
    SLASH_USER,
    TEAM,
    deplite_interaction,
    link_chat_user,
    link_path,
    post_interaction,
    post_slash_command,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(slack_api):
    return Client()


def _login_link(chat) -> str:
    answer = post_slash_command(chat, "login").json()
    assert answer["response_type"] == "ephemeral"
    return link_path(answer["text"].replace("&amp;", "&"))


def _browser(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_login_answers_privately_with_a_link_that_links_the_member_who_confirms(chat, slack_install, member):
    path = _login_link(chat)
    assert ChatLinkToken.objects.count() == 1
    browser = _browser(member)
    page = browser.get(path)
    assert page.status_code == 200
    body = page.content.decode()
    assert "alice" in body and SLASH_USER in body and "member@acme.test" in body and "Acme" in body
    assert not ChatIdentity.objects.exists()  # GET shows, only the confirm button links
    done = browser.post(path)
    assert done.status_code == 200 and 'data-testid="link-done"' in done.content.decode()
    identity = ChatIdentity.objects.get()
    assert (identity.org, identity.provider, identity.team_id, identity.chat_user_id, identity.user) == (
        slack_install.org,
        ChatProvider.SLACK,
        TEAM,
        SLASH_USER,
        member,
    )
    event = AuditEvent.objects.get(action="chat_identity.linked")
    assert event.actor_label == "member@acme.test" and event.data["chatUserId"] == SLASH_USER


def test_the_link_is_single_use(chat, slack_install, member, admin_user):
    path = _login_link(chat)
    assert _browser(member).post(path).status_code == 200
    again = _browser(admin_user).post(path)
    assert again.status_code == 400 and "already used" in again.content.decode()
    assert ChatIdentity.objects.get().user == member


def test_an_expired_link_links_nobody(chat, slack_install, member):
    path = _login_link(chat)
    ChatLinkToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _browser(member).post(path)
    assert response.status_code == 400 and "expired" in response.content.decode()
    assert not ChatIdentity.objects.exists()


def test_a_forged_or_tampered_link_is_refused(chat, slack_install, member):
    path = _login_link(chat)
    response = _browser(member).post(path[:-3] + "abc")
    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert not ChatIdentity.objects.exists()


def test_a_user_of_another_org_cannot_use_the_link(chat, slack_install, outsider):
    path = _login_link(chat)
    response = _browser(outsider).post(path)
    assert response.status_code == 400
    assert "Acme" not in response.content.decode()  # nothing of the org is shown to a stranger
    assert not ChatIdentity.objects.exists()


def test_the_link_page_needs_a_signed_in_user(chat, slack_install):
    path = _login_link(chat)
    response = Client().get(path)
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_confirm_needs_the_csrf_token(chat, slack_install, member):
    path = _login_link(chat)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member)
    assert browser.post(path).status_code == 403
    assert not ChatIdentity.objects.exists()


def test_logout_unlinks_and_is_audited_via_slack(chat, slack_install, member):
    link_chat_user(member, org=slack_install.org)
    answer = post_slash_command(chat, "logout", trigger_id="t-logout").json()
    assert "Unlinked" in answer["text"]
    assert not ChatIdentity.objects.exists()
    event = AuditEvent.objects.get(action="chat_identity.removed")
    assert event.actor_label == "member@acme.test" and event.data["via"] == "Slack"


def test_removing_a_member_removes_their_chat_identities(slack_install, owner, member):
    link_chat_user(member, org=slack_install.org)
    link_chat_user(owner, org=slack_install.org, chat_user_id="U0OWNER")
    membership = Membership.objects.get(org=slack_install.org, user=member)
    member_remove(membership=membership, actor=Actor.for_user(owner), actor_role="owner")
    assert list(ChatIdentity.objects.values_list("user", flat=True)) == [owner.pk]


def test_discord_login_answers_with_an_ephemeral_link(client, discord_api, discord_install, member):
    response = post_interaction(Client(), deplite_interaction("login"))
    data = response.json()["data"]
    assert data["flags"] == 64
    browser = _browser(member)
    assert browser.post(link_path(data["content"])).status_code == 200
    identity = ChatIdentity.objects.get()
    assert (identity.provider, identity.team_id, identity.chat_user_id) == (ChatProvider.DISCORD, GUILD, DISCORD_USER)
    assert not Job.objects.exists()


# --- the pages ------------------------------------------------------------------------------------------


def test_a_member_sees_and_removes_only_their_own_identity(slack_install, member, admin_user):
    mine = link_chat_user(member, org=slack_install.org)
    theirs = link_chat_user(admin_user, org=slack_install.org, chat_user_id="U0ADMIN")
    browser = _browser(member)
    page = browser.get("/orgs/acme/integrations/identities/").content.decode()
    assert SLASH_USER in page and "U0ADMIN" not in page
    assert browser.post(f"/orgs/acme/integrations/identities/{theirs.pk}/remove").status_code == 404
    assert browser.post(f"/orgs/acme/integrations/identities/{mine.pk}/remove").status_code == 302
    assert list(ChatIdentity.objects.all()) == [theirs]


def test_an_admin_sees_every_identity_on_the_integrations_page_and_removes_any(slack_install, member, admin_user):
    theirs = link_chat_user(member, org=slack_install.org)
    browser = _browser(admin_user)
    page = browser.get("/orgs/acme/integrations/").content.decode()
    assert 'data-testid="chat-identities"' in page and SLASH_USER in page and "member@acme.test" in page
    assert browser.post(f"/orgs/acme/integrations/identities/{theirs.pk}/remove").status_code == 302
    assert not ChatIdentity.objects.exists()


def test_another_orgs_identity_is_a_404(slack_install, member, org_b):
    other = MembershipFactory(org=org_b).user
    identity = link_chat_user(other, org=org_b, team="T0B")
    browser = _browser(member)
    assert browser.post(f"/orgs/acme/integrations/identities/{identity.pk}/remove").status_code == 404
    assert ChatIdentity.objects.filter(pk=identity.pk).exists()


def _links(installation, *chat_user_ids: str) -> list[ChatLinkToken]:
    """One link per chat user, as `/deplite login` issues them."""
    for chat_user_id in chat_user_ids:
        identities.link_issue(installation=installation, chat_user_id=chat_user_id)
    return list(ChatLinkToken.objects.order_by("pk"))


def test_links_past_their_age_are_purged_used_or_not(slack_install, settings):
    expired, spent, used_lately, live = _links(slack_install, "U1", "U2", "U3", "U4")
    past = timezone.now() - identities.LINK_PURGE_GRACE - timedelta(seconds=1)
    ChatLinkToken.objects.filter(pk=expired.pk).update(expires_at=past)
    ChatLinkToken.objects.filter(pk=spent.pk).update(expires_at=past, used_at=past - timedelta(minutes=5))
    # Used, but within its age: its row still answers "already used" to a second click.
    ChatLinkToken.objects.filter(pk=used_lately.pk).update(used_at=timezone.now())
    entry = settings.CELERY_BEAT_SCHEDULE["chat-link-tokens-purge"]
    assert entry["task"] == chat_link_tokens_purge.name
    assert chat_link_tokens_purge() == 2
    assert sorted(ChatLinkToken.objects.values_list("pk", flat=True)) == [used_lately.pk, live.pk]
    assert chat_link_tokens_purge() == 0


def test_the_purge_is_bounded_per_run_and_the_embedded_beat_runs_it(slack_install):
    _links(slack_install, *(f"U{n}" for n in range(7)))
    live = ChatLinkToken.objects.order_by("pk").last()
    ChatLinkToken.objects.exclude(pk=live.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    assert identities.link_tokens_purge(batch=2, max_batches=2) == 4
    assert ChatLinkToken.objects.count() == 3
    call_command("embedded_beat", "--once")
    assert list(ChatLinkToken.objects.all()) == [live]
