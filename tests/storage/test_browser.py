"""Storage in headless Chromium: Storage → New binding with a masked secret, then Test connection."""

import pytest

from storage.models import StorageBinding
from tests.browser import log_in, screenshot


@pytest.mark.django_db(transaction=True)
def test_admin_creates_a_binding_in_the_browser_and_tests_the_connection(
    browser_page, admin_user, org_a, moto_auth, allow_private, tmp_path
):
    page, base = browser_page
    log_in(page, base, "admin@acme.test", then="/orgs/acme/")
    page.click("nav.org >> text=Storage")
    page.click("text=New binding")
    # The docs' fields, the secret masked.
    assert page.get_attribute("input[name=secret_key]", "type") == "password"
    page.fill("input[name=name]", "prod-artifacts")
    page.fill("input[name=endpoint]", moto_auth["url"])
    page.fill("input[name=region]", "ap-northeast-2")
    page.fill("input[name=bucket]", moto_auth["bucket"])
    page.fill("input[name=access_key]", moto_auth["access_key"])
    page.fill("input[name=secret_key]", moto_auth["secret_key"])
    page.check("input[name=path_style]")
    page.click("text=Create binding")
    page.wait_for_selector("text=Storage binding prod-artifacts created.")
    # Saving ran the connection check; its answer is shown with the binding.
    assert page.inner_text("[data-testid=check-result]") == "Connection OK: The bucket is reachable with this key."

    binding = StorageBinding.objects.get(name="prod-artifacts")
    assert binding.secret_key == moto_auth["secret_key"] and binding.path_style
    # Write-only: the edit page never carries the secret, in the field or anywhere.
    assert page.input_value("input[name=secret_key]") == ""
    assert moto_auth["secret_key"] not in page.content()

    page.click("[data-testid=test-connection]")
    page.wait_for_selector("text=Connection OK: The bucket is reachable with this key.")
    page.screenshot(path=str(tmp_path / "storage.png"), full_page=True)
    assert moto_auth["secret_key"] not in page.content()


@pytest.mark.django_db(transaction=True)
def test_saving_a_binding_in_the_browser_shows_the_connection_check_next_to_it(
    browser_page, admin_user, org_a, moto_url, bucket, allow_private
):
    page, base = browser_page
    log_in(page, base, "admin@acme.test", then="/orgs/acme/storage/new/")
    page.fill("input[name=name]", "staging")
    page.fill("input[name=endpoint]", moto_url)
    page.fill("input[name=region]", "ap-northeast-2")
    page.fill("input[name=bucket]", "not-created-yet")
    page.fill("input[name=access_key]", "AKIADEPLITE")
    page.fill("input[name=secret_key]", "moto-secret-value")
    page.check("input[name=path_style]")
    page.click("text=Create binding")
    page.wait_for_selector("[data-testid=check-result]")

    # Saved although the check failed, and the reason is on the binding's page.
    binding = StorageBinding.objects.get(name="staging")
    assert page.url == f"{base}/orgs/acme/storage/{binding.pk}/"
    failed = page.inner_text("[data-testid=check-result]")
    assert failed == "Connection failed (no_such_bucket): The bucket does not exist at this endpoint.", failed
    assert page.get_attribute("[data-testid=check-result] li", "class") == "error"
    screenshot(page, "storage-binding-check-failed")

    page.fill("input[name=bucket]", bucket)
    page.fill("input[name=secret_key]", "moto-secret-value")
    page.click("text=Save binding")
    page.wait_for_selector("text=Storage binding staging saved.")
    assert page.inner_text("[data-testid=check-result]") == "Connection OK: The bucket is reachable with this key."
    assert page.get_attribute("[data-testid=check-result] li", "class") == "success"
    assert "moto-secret-value" not in page.content()
    binding.refresh_from_db()
    assert binding.bucket == bucket
