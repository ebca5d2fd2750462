"""A trigger's webhook target in the API and pages: the secret shown once, masked after, encrypted in its
row and re-encrypted by rotate_encryption_keys; rotation; "Send test"; URL rules naming the field; and
another org's trigger a 404 on the new actions."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from orgs.models import AuditEvent
from triggers.models import Trigger

from ..factories import TriggerFactory
from .webhook_receiver import Receiver, Reply, readme_verifier

verify = readme_verifier()


@pytest.fixture
def receiver(settings):
    settings.DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS = True
    server = Receiver()
    yield server
    server.close()


def _create(api, user, url: str, **extra):
    body = {"name": "deploy-prod", "workflow": "deploy", "notifyProvider": "webhook", "notifyUrl": url, **extra}
    return api.as_user(user).post("/api/orgs/acme/triggers", body, format="json")


def test_the_secret_is_shown_once_masked_after_and_encrypted_in_its_row(api, owner, receiver):
    response = _create(api, owner, receiver.url())
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["notifySecret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert body["notifySecretHint"] == f"{secret[:6]}…{secret[-4:]}"
    assert (body["notifyProvider"], body["notifyUrl"], body["notifyTeamId"]) == ("webhook", receiver.url(), "")

    read = api.as_user(owner).get(f"/api/orgs/acme/triggers/{body['id']}")
    assert read.json()["notifySecret"] is None and secret not in read.content.decode()
    listed = api.as_user(owner).get("/api/orgs/acme/triggers")
    assert secret not in listed.content.decode()
    with connection.cursor() as cursor:
        cursor.execute("SELECT notify_secret FROM triggers_trigger WHERE id = %s", [_db_id(body["id"])])
        (stored,) = cursor.fetchone()
    assert stored and secret not in stored
    assert Trigger.objects.get(pk=body["id"]).notify_secret == secret


def test_rotate_encryption_keys_reencrypts_the_webhook_secret(org_a, settings, receiver):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.DEPLITE_ENCRYPTION_KEYS = [old]
    trigger = TriggerFactory(org=org_a, notify_provider="webhook", notify_url=receiver.url(), notify_secret="whsec_r")
    settings.DEPLITE_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("SELECT notify_secret FROM triggers_trigger WHERE id = %s", [_db_id(trigger.pk)])
        (ciphertext,) = cursor.fetchone()
    assert Fernet(new.encode()).decrypt(ciphertext.encode()) == b"whsec_r"
    settings.DEPLITE_ENCRYPTION_KEYS = [new]  # the old key retired
    assert Trigger.objects.get(pk=trigger.pk).notify_secret == "whsec_r"


def test_switching_a_trigger_to_a_webhook_shows_its_new_secret_in_that_answer_only(api, owner, org_a, receiver):
    trigger = TriggerFactory(org=org_a)
    url = f"/api/orgs/acme/triggers/{trigger.pk}"
    first = api.as_user(owner).patch(url, {"notifyProvider": "webhook", "notifyUrl": receiver.url()}, format="json")
    assert first.status_code == 200, first.content
    secret = first.json()["notifySecret"]
    assert secret.startswith("whsec_")
    again = api.as_user(owner).patch(url, {"notifyUrl": receiver.url("/other")}, format="json")
    assert again.json()["notifySecret"] is None
    assert Trigger.objects.get(pk=trigger.pk).notify_secret == secret  # a new URL keeps the secret
    # Back to a chat channel: the URL goes, the other target's fields are taken.
    chat = api.as_user(owner).patch(
        url, {"notifyProvider": "slack", "notifyTeamId": "T0123", "notifyChannelId": "C0456"}, format="json"
    )
    assert chat.status_code == 200, chat.content
    assert (chat.json()["notifyUrl"], chat.json()["notifyChannelId"]) == ("", "C0456")


def test_rotating_gives_a_new_secret_once_and_the_test_event_is_signed_with_it(api, owner, receiver):
    created = _create(api, owner, receiver.url()).json()
    rotated = api.as_user(owner).post(f"/api/orgs/acme/triggers/{created['id']}/rotate-notify-secret")
    assert rotated.status_code == 200, rotated.content
    new_secret = rotated.json()["notifySecret"]
    assert new_secret.startswith("whsec_") and new_secret != created["notifySecret"]
    assert AuditEvent.objects.filter(action="trigger.notify_secret_rotated", target_id=created["id"]).exists()
    assert new_secret not in str(list(AuditEvent.objects.values_list("data", flat=True)))

    tested = api.as_user(owner).post(f"/api/orgs/acme/triggers/{created['id']}/notify-test")
    assert tested.status_code == 200, tested.content
    assert tested.json()["delivered"] is True and tested.json()["status"] == 200
    [got] = receiver.received
    assert got.headers["x-deplite-event"] == "test" and got.json()["event"] == "test"
    assert verify(new_secret, got.body, got.headers["x-deplite-signature"])
    assert not verify(created["notifySecret"], got.body, got.headers["x-deplite-signature"])


def test_send_test_reports_the_endpoints_refusal(api, owner, receiver):
    created = _create(api, owner, receiver.url()).json()
    receiver.reply(Reply(status=500))
    tested = api.as_user(owner).post(f"/api/orgs/acme/triggers/{created['id']}/notify-test").json()
    assert (tested["delivered"], tested["status"], tested["errorCode"]) == (False, 500, "http_500")


def test_a_successful_test_enables_a_target_a_410_disabled(api, owner, org_a, receiver):
    created = _create(api, owner, receiver.url()).json()
    Trigger.objects.filter(pk=created["id"]).update(
        notify_disabled_at="2026-01-01T00:00:00Z", notify_disabled_reason="the endpoint answered 410 Gone"
    )
    tested = api.as_user(owner).post(f"/api/orgs/acme/triggers/{created['id']}/notify-test").json()
    assert tested["reenabled"] is True
    assert Trigger.objects.get(pk=created["id"]).notify_disabled_at is None


def test_rotate_and_test_refuse_a_trigger_without_a_webhook(api, owner, org_a):
    trigger = TriggerFactory(org=org_a)
    for action in ("rotate-notify-secret", "notify-test"):
        response = api.as_user(owner).post(f"/api/orgs/acme/triggers/{trigger.pk}/{action}")
        assert response.status_code == 409, (action, response.content)
        assert response.json()["error"]["code"] == "not_a_webhook_target"


@pytest.mark.parametrize("action", ["rotate-notify-secret", "notify-test"])
def test_another_orgs_trigger_is_a_404_on_the_new_actions(api, outsider, org_a, receiver, action):
    trigger = TriggerFactory(org=org_a, notify_provider="webhook", notify_url=receiver.url(), notify_secret="whsec_a")
    response = api.as_user(outsider).post(f"/api/orgs/acme/triggers/{trigger.pk}/{action}")
    assert response.status_code == 404
    response = api.as_user(outsider).post(f"/api/orgs/bravo/triggers/{trigger.pk}/{action}")
    assert response.status_code == 404
    assert receiver.received == [] and Trigger.objects.get(pk=trigger.pk).notify_secret == "whsec_a"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://hooks.example.com/x", "must start with https://"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https://2130706433/x", "dotted form"),
        ("ftp://hooks.example.com/x", "https://"),
        ("not a url", "URL"),
    ],
)
def test_an_unsafe_url_is_refused_naming_the_field(api, owner, settings, url, says):
    settings.DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS = False
    response = _create(api, owner, url)
    assert response.status_code == 400, response.content
    [message] = response.json()["error"]["details"]["fields"]["notifyUrl"]
    assert says in message
    assert not Trigger.objects.exists()


def test_metadata_addresses_stay_refused_when_private_urls_are_allowed(api, owner, receiver):
    response = _create(api, owner, "http://169.254.169.254/latest/meta-data")
    assert response.status_code == 400
    assert "metadata" in response.json()["error"]["details"]["fields"]["notifyUrl"][0]


def test_a_refused_private_url_names_the_setting_that_allows_it(api, owner, settings):
    settings.DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS = False
    message = _create(api, owner, "https://192.168.1.20/hook").json()["error"]["details"]["fields"]["notifyUrl"][0]
    assert "DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS=true" in message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"notifyProvider": "webhook"}, "notifyUrl"),
        ({"notifyUrl": "https://hooks.example.com/x"}, "notifyProvider"),
        ({"notifyProvider": "teams"}, "notifyProvider"),
        (
            {"type": "slack", "chatProvider": "webhook", "chatTeamId": "T1", "chatChannelId": "C1", "chatKeyword": "d"},
            "chatProvider",
        ),
    ],
)
def test_notify_fields_are_checked_naming_the_field(api, owner, body, field):
    response = api.as_user(owner).post(
        "/api/orgs/acme/triggers", {"name": "deploy-prod", "workflow": "deploy", **body}, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]["fields"]


def test_pages_show_the_secret_once_and_send_a_test(client, owner, receiver):
    client.force_login(owner)
    response = client.post(
        "/orgs/acme/triggers/new/",
        {
            "name": "deploy-prod",
            "type": "webhook",
            "workflow": "deploy",
            "notify_provider": "webhook",
            "notify_url": receiver.url(),
            "notify_on": "always",
            "enabled": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    shown = re.search(rb'data-testid="notify-secret" id="notify-secret">([^<]+)<', response.content)
    trigger = Trigger.objects.get()
    assert shown and shown.group(1).decode() == trigger.notify_secret
    again = client.get(f"/orgs/acme/triggers/{trigger.pk}/")
    assert trigger.notify_secret.encode() not in again.content
    assert f"{trigger.notify_secret[:6]}…{trigger.notify_secret[-4:]}".encode() in again.content

    tested = client.post(f"/orgs/acme/triggers/{trigger.pk}/notify-test", follow=True)
    assert b"Test event delivered: the endpoint answered 200" in tested.content
    assert verify(trigger.notify_secret, receiver.received[0].body, receiver.received[0].headers["x-deplite-signature"])

    rotated = client.post(f"/orgs/acme/triggers/{trigger.pk}/rotate-notify-secret", follow=True)
    trigger.refresh_from_db()
    assert trigger.notify_secret.encode() in rotated.content
    assert trigger.notify_secret != shown.group(1).decode()


def test_a_member_cannot_rotate_or_send_a_test(client, member, org_a, receiver):
    trigger = TriggerFactory(org=org_a, notify_provider="webhook", notify_url=receiver.url(), notify_secret="whsec_m")
    client.force_login(member)
    for action in ("rotate-notify-secret", "notify-test"):
        assert client.post(f"/orgs/acme/triggers/{trigger.pk}/{action}").status_code == 403
    assert receiver.received == [] and Trigger.objects.get(pk=trigger.pk).notify_secret == "whsec_m"


def test_send_test_is_rate_limited_per_trigger(api, owner, receiver):
    created = _create(api, owner, receiver.url()).json()
    url = f"/api/orgs/acme/triggers/{created['id']}/notify-test"
    answers = [api.as_user(owner).post(url).status_code for _ in range(11)]
    assert answers == [200] * 10 + [429]
    assert len(receiver.received) == 10


def _db_id(pk) -> object:
    """A trigger id as the database stores it (SQLite keeps UUIDs as 32 hex characters), for raw SQL."""
    return Trigger._meta.pk.get_db_prep_value(uuid.UUID(str(pk)), connection)
