"""Files in headless Chromium against the test S3 server: upload straight to the bucket with a
progress bar reaching 100%, the file becoming available, copy its id, download it, run a
trigger with it as input from the Run form, delete it after confirming."""

import os

import pytest
import requests

from storage.models import FileStatus, StoredFile
from tests.browser import log_in, screenshot
from triggers.models import Job

from ..factories import TriggerFactory


@pytest.mark.django_db(transaction=True)
def test_upload_with_progress_then_use_download_and_delete(browser_page, admin_user, org_a, binding, tmp_path):
    page, base = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    payload = os.urandom(3 * 1024 * 1024)
    artifact = tmp_path / "release-1.2.3.tar.gz"
    artifact.write_bytes(payload)

    log_in(page, base, "admin@acme.test", then="/orgs/acme/storage/files/")
    assert page.text_content("#cors-rule").startswith('[{"AllowedOrigins": [')
    # Record every value the progress bar takes, reported to the test as it changes (the page
    # navigates away once the upload is done, so nothing is read back from it afterwards).
    seen: list = []
    page.expose_function("reportProgress", lambda value: seen.append(value))
    page.evaluate(
        """() => new MutationObserver(() => window.reportProgress(document.getElementById('upload-progress').value))
            .observe(document.getElementById('upload-percent'), {childList: true, characterData: true, subtree: true})"""
    )
    page.set_input_files("#u-file", str(artifact))
    page.click("#upload-button")
    page.wait_for_url("**/storage/files/?uploaded=*")
    assert seen and seen[-1] == 100 and seen == sorted(seen)  # the bar only moves forward, up to 100%
    page.wait_for_url("**/storage/files/?uploaded=*")
    stored = StoredFile.objects.get()
    assert (stored.status, stored.size, stored.file_name) == (FileStatus.AVAILABLE, len(payload), artifact.name)
    row = page.locator(f"tr[data-file='{stored.pk}']")
    assert row.locator("[data-testid=file-status]").inner_text() == "Available"
    screenshot(page, "files")

    row.locator("text=Copy id").click()
    assert page.evaluate("navigator.clipboard.readText()") == str(stored.pk)

    # Download: a presigned GET on the bucket, the same bytes.
    href = row.locator("[data-testid=download]").get_attribute("href")
    download = page.request.get(base + href, max_redirects=0)
    assert download.status == 302
    assert requests.get(download.headers["location"], timeout=10).content == payload

    # The Run form offers it as an input file.
    trigger = TriggerFactory(org=org_a, name="deploy-artifact")
    page.goto(f"{base}/orgs/acme/triggers/{trigger.pk}/")
    page.select_option("select[name=input_file]", str(stored.pk))
    page.click("text=Run deploy-artifact")
    page.wait_for_selector("text=queued.")
    job = Job.objects.get()
    assert job.params == {"FILE": str(stored.pk)}
    assert [f["fileId"] for f in job.input_files] == [str(stored.pk)]

    # Delete asks first.
    page.goto(f"{base}/orgs/acme/storage/files/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator(f"tr[data-file='{stored.pk}'] >> text=Delete").click()
    page.wait_for_timeout(300)
    stored.refresh_from_db()
    assert stored.status == FileStatus.AVAILABLE
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"tr[data-file='{stored.pk}'] >> text=Delete").click()
    page.wait_for_selector(f"text=File {artifact.name} deleted.")
    stored.refresh_from_db()
    assert stored.status == FileStatus.DELETED
