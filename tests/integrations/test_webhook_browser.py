"""A webhook notify target in headless Chromium: create it with the trigger form, read the secret
shown once, send a test event the local receiver verifies, rotate the secret (axe-core checks each page)."""

import pytest

from tests.browser import log_in
from triggers.models import Trigger

from .webhook_receiver import Receiver, readme_verifier


@pytest.mark.django_db(transaction=True)
def test_admin_sets_a_webhook_target_sends_a_test_and_rotates_the_secret(browser_page, admin_user, org_a, settings):
    settings.DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS = True
    receiver = Receiver()
    verify = readme_verifier()
    page, base = browser_page
    try:
        log_in(page, base, "admin@acme.test", then="/orgs/acme/triggers/new/")
        page.fill("input[name=name]", "deploy-prod")
        page.fill("input[name=workflow]", "deploy")
        page.select_option("select[name=notify_provider]", "webhook")
        page.fill("input[name=notify_url]", receiver.url("/deplite"))
        page.click("text=Create trigger")
        page.wait_for_selector("[data-testid=notify-secret]")
        secret = page.locator("[data-testid=notify-secret]").inner_text().strip()
        trigger = Trigger.objects.get(name="deploy-prod")
        assert secret == trigger.notify_secret and secret.startswith("whsec_")
        assert page.locator("[data-testid=notify-url]").inner_text() == receiver.url("/deplite")

        page.click("[data-testid=notify-test]")
        page.wait_for_selector("text=Test event delivered: the endpoint answered 200")
        assert page.locator("[data-testid=notify-secret]").count() == 0  # shown once only
        [got] = receiver.received
        assert verify(secret, got.body, got.headers["x-deplite-signature"])

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("[data-testid=notify-rotate]")
        page.wait_for_selector("[data-testid=notify-secret]")
        rotated = page.locator("[data-testid=notify-secret]").inner_text().strip()
        trigger.refresh_from_db()
        assert rotated == trigger.notify_secret != secret
        assert page.locator("[data-testid=notify-secret-hint]").inner_text() == f"{rotated[:6]}…{rotated[-4:]}"
    finally:
        receiver.close()
